"""``make demo``: the whole stack on demo data, on this machine."""

from include.demo.run import main

raise SystemExit(main())
