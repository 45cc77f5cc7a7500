"""The HTTP face: the app and its middleware, narrow typed dependencies, the routes, the
guest page. Thin: each route checks who asks and calls one service function."""
