from include.sentinel.cli import main

raise SystemExit(main())
