"""nginx in front of the bench's app, configured as `make cluster` runs it (deploy/cluster.py's
config, with the micro-cache of the public catalog reads), for `--browse-via nginx`. Its access
log ends each line with what the micro-cache did, which is how its hits are counted."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from deploy.cluster import nginx_config

from tests.e2e.servers import free_port

READY_TIMEOUT = 10.0
# $upstream_cache_status values that mean nginx answered from its copy, the app not asked.
ANSWERED_BY_NGINX = frozenset({"HIT", "UPDATING", "STALE", "REVALIDATED"})


@dataclass
class NginxFront:
    port: int
    run_dir: Path

    @property
    def access_log(self) -> Path:
        return self.run_dir / "nginx-access.log"

    def log_size(self) -> int:
        return self.access_log.stat().st_size if self.access_log.exists() else 0

    def cache_statuses(self, since: int) -> Counter[str]:
        """What the micro-cache did with each request logged after byte `since` ("-": a
        location without it, e.g. /health)."""
        with self.access_log.open("rb") as log:
            log.seek(since)
            return Counter(line.rsplit(b" ", 1)[-1].decode() for line in log.read().splitlines())


@contextlib.asynccontextmanager
async def nginx_in_front(app_port: int, directory: Path) -> AsyncIterator[NginxFront]:
    """nginx on a free port proxying to the app on `app_port`, ready; stopped on the way out."""
    nginx, front = _configured(app_port, directory / "nginx")
    run_dir = str(front.run_dir)
    process = await asyncio.create_subprocess_exec(
        *(nginx, "-p", run_dir, "-e", f"{run_dir}/nginx-error.log", "-c", "nginx.conf"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the bench, which stops nginx itself
    )
    try:
        await _ready(front, process)
        yield front
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


def _configured(app_port: int, run_dir: Path) -> tuple[str, NginxFront]:
    """The nginx binary, and its config written into `run_dir`."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError("nginx is not installed (make nginx)")
    (run_dir / "nginx-temp").mkdir(parents=True, exist_ok=True)
    front = NginxFront(free_port(), run_dir)
    (run_dir / "nginx.conf").write_text(nginx_config(run_dir, front.port, [app_port]))
    return nginx, front


async def _ready(front: NginxFront, process: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{front.port}") as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health/ready")).status_code == 200:
                    return
            if process.returncode is not None or loop.time() > deadline:
                log = front.run_dir / "nginx-error.log"
                raise RuntimeError(f"nginx did not start; see {log}")
            await asyncio.sleep(0.05)  # poll interval while it starts
