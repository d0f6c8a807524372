"""The explorer's web app: a Starlette (ASGI) app served by uvicorn, JSON endpoints over the
:class:`~dnode.cli.explorer.data.Explorer` model, server-sent events as blocks arrive, and one
static page that renders them (charts through vega-embed, vendored from npm)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from dnode.cli.explorer.data import Explorer

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
#: the chart renderer: npm packages installed by scripts/install_js.sh (versions in js/)
VENDOR = {
    "vega.js": HERE / "js" / "node_modules" / "vega" / "build" / "vega.min.js",
    "vega-lite.js": HERE / "js" / "node_modules" / "vega-lite" / "build" / "vega-lite.min.js",
    "vega-embed.js": HERE / "js" / "node_modules" / "vega-embed" / "build" / "vega-embed.min.js",
}


def vendor_missing() -> list[str]:
    return [str(p) for p in VENDOR.values() if not p.is_file()]


def make_app(ex: Explorer) -> Starlette:
    """The app; read-only (GET only)."""

    def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name in VENDOR:
            return FileResponse(VENDOR[name], media_type="text/javascript")
        path = STATIC / name
        if "/" in name or not path.is_file():
            return Response("not found", status_code=404)
        kind = {"js": "text/javascript", "css": "text/css"}.get(path.suffix[1:], "text/plain")
        return FileResponse(path, media_type=kind)

    def overview(request: Request) -> Response:
        return JSONResponse(ex.overview())

    def tasks(request: Request) -> Response:
        return JSONResponse({"head": ex.head, "tasks": ex.tasks()})

    def task(request: Request) -> Response:
        got = ex.task(int(request.path_params["tid"]))
        if got is None:
            return JSONResponse({"error": "no such task"}, status_code=404)
        return JSONResponse({"head": ex.head, "task": got})

    def datasets(request: Request) -> Response:
        return JSONResponse({"head": ex.head, "datasets": ex.datasets()})

    def nodes(request: Request) -> Response:
        return JSONResponse({"head": ex.head, "nodes": ex.nodes(), "owners": ex.owners()})

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            last = -2
            yield "retry: 1000\n\n"
            while not await request.is_disconnected():
                if ex.head != last:
                    last = ex.head
                    yield f"event: block\ndata: {json.dumps({'head': last})}\n\n"
                await asyncio.sleep(0.25)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})  # fmt: skip

    routes: list[Any] = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/api/overview", overview),
        Route("/api/tasks", tasks),
        Route("/api/tasks/{tid:int}", task),
        Route("/api/datasets", datasets),
        Route("/api/nodes", nodes),
        Route("/api/events", events),
    ]
    return Starlette(routes=routes)


def serve(ex: Explorer, host: str, port: int, on_ready: Any = None) -> None:
    """Serve until interrupted (uvicorn; Ctrl-C or SIGTERM stop it)."""
    import uvicorn

    # open event streams (a browser tab) must not hold a stop: 2 s of grace, then closed
    config = uvicorn.Config(
        make_app(ex),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets=sockets)
            bound = [s.getsockname() for srv in server.servers for s in srv.sockets]
            on_ready(bound[0][1] if bound else port)

        server.startup = startup  # type: ignore[method-assign]
    server.run()
