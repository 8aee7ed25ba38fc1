"""``python -m bot``: start the bot's HTTP server."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.app import create_app
from bot.settings import Settings


def main() -> None:
    import os
    import sys
    if os.environ.get("SWITCH"):
        sys.setswitchinterval(float(os.environ["SWITCH"]))
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger(__name__).info("starting on http://%s:%d (database %s)", settings.host, settings.port,
                                     settings.database_url.split("@")[-1])
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)


if __name__ == "__main__":
    main()
