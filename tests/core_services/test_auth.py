"""Bearer tokens: whatever bytes a caller sends, a bad token is a 401, never a server error."""

from __future__ import annotations

import pytest

from core_services.auth import TokenAuthority
from core_services.problems import Problem

ODD_TOKENS = ["nvt_a_b_c_\xe9", "nvt_cus_x_nonce_\u20ac" + "0" * 31, "bad token", "\x00", "tok\x7f"]


@pytest.mark.parametrize("token", ODD_TOKENS)
def test_a_token_with_bytes_outside_printable_ascii_is_unauthorized(token: str) -> None:
    with pytest.raises(Problem) as raised:
        TokenAuthority("admin").authenticate(token)
    assert raised.value.status == 401
