from isp_node.cli import main

raise SystemExit(main())
