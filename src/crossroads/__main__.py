from crossroads.cli import main

raise SystemExit(main())
