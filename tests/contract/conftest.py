"""The contract suite runs against the backend named by --backend (default: the embedded engine).

On the GPU machine: `python -m pytest tests/contract --backend sglang://127.0.0.1:30000
--embeds-backend sglang://127.0.0.1:30001` (the second server started with --disable-radix-cache).
"""

from __future__ import annotations

import pytest
import pytest_asyncio

from backend import open_backend


async def _opened(spec: str, request: pytest.FixtureRequest):
    if spec == "local":
        yield request.getfixturevalue("local_backend")
        return
    instance = open_backend(spec)
    yield instance
    await instance.close()


@pytest_asyncio.fixture(scope="session")
async def backend(request: pytest.FixtureRequest):
    async for instance in _opened(request.config.getoption("--backend"), request):
        yield instance


@pytest_asyncio.fixture(scope="session")
async def embeds_backend(request: pytest.FixtureRequest, backend):
    spec = request.config.getoption("--embeds-backend")
    if spec is None:
        yield backend
        return
    async for instance in _opened(spec, request):
        yield instance
