"""The example app in examples/shop-modules, for the suites that run it (test_modules.py,
test_jobs.py): its binary, a copy of its app folder, a `shop serve` process, and the cart both
suites total."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from microlith_e2e import REPO, MicrolithServer

SHOP_BIN = os.environ.get("SHOP_BIN") or str(REPO / "examples" / "shop-modules" / ".build" / "debug" / "shop")
SHOP_APP = REPO / "examples" / "shop-modules" / "app"

#: Skips a suite when the example app is not built (scripts/test builds it); with SHOP_BIN_REQUIRED set it runs, and fails.
requires_shop = pytest.mark.skipif(
    not os.path.exists(SHOP_BIN) and not os.environ.get("SHOP_BIN_REQUIRED"),
    reason=f"the example app is not built ({SHOP_BIN}); scripts/test builds it",
)

CART = {"items": [{"sku": "bread", "quantity": 2}, {"sku": "apple", "quantity": 12}, {"sku": "cheese", "quantity": 1}]}
EXPECTED_TOTAL = 2 * 250 + 12 * 45 + 899


class ShopServer(MicrolithServer):
    """A `shop serve` process (the example app's own binary) with --roles."""

    def __init__(self, app_dir, data_dir, roles: str | None = None, env: dict | None = None):
        super().__init__(app_dir, data_dir, env=env, extra_args=("--roles", roles) if roles else ())

    def command(self, port: int) -> list[str]:
        return [SHOP_BIN] + super().command(port)[1:]


def copy_app(base: Path, pricing_port: int | None = None) -> Path:
    """A copy of the example app folder; with `pricing_port`, microlith.yaml points the pricing module there."""
    app = base / f"shop-app-{pricing_port or 'all'}"
    shutil.copytree(SHOP_APP, app)
    if pricing_port is not None:
        (app / "microlith.yaml").write_text(
            f"modules:\n  pricing:\n    url: http://127.0.0.1:{pricing_port}\n    timeoutMs: 5000\n")
    return app
