"""Bare botbuilder echo bot: the throughput baseline for the benchmarks.

Stock ``CloudAdapter(ConfigurationBotFrameworkAuthentication(config))`` with an empty app id (no
inbound token validation, no outbound token) and an ``ActivityHandler`` that echoes messages, served
by aiohttp at ``POST /api/messages`` with access logging off. Nothing is tuned, so the figures show
what the SDK itself costs per turn (it builds a new msrest ``ConnectorClient`` per turn and sends the
reply with ``requests`` in the default thread pool).

    python -m bench.echo_baseline --port 3979
"""

from __future__ import annotations

import argparse
import logging

from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication


class EchoConfig:
    PORT = 3979
    APP_ID = ""
    APP_PASSWORD = ""
    APP_TYPE = "MultiTenant"
    APP_TENANTID = ""


class EchoBot(ActivityHandler):
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        text = turn_context.activity.text or ""
        await turn_context.send_activity(f"Echo: {text}")


def create_app() -> web.Application:
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(EchoConfig()))
    bot = EchoBot()

    async def on_error(context: TurnContext, error: Exception) -> None:
        logging.getLogger("echo_baseline").error("turn failed: %r", error)

    adapter.on_turn_error = on_error

    async def messages(request: web.Request) -> web.StreamResponse:
        response = await adapter.process(request, bot)
        return response if response is not None else web.Response(status=201)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=EchoConfig.PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
