"""One module per group of routes: chat, login, conversations, public, performance, health."""
