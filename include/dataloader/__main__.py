from include.dataloader.cli import main

raise SystemExit(main())
