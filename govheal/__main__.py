from govheal.cli import main

raise SystemExit(main())
