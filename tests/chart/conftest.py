from __future__ import annotations

import pytest
from chart_rendering import Rendered, render


@pytest.fixture(scope="session")
def defaults() -> Rendered:
    return render()
