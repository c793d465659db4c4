from gateway.graph_server.server import main

raise SystemExit(main())
