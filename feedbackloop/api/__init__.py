"""The HTTP API (FastAPI): thin routers over tools/, errors mapped to 4xx once, here."""
