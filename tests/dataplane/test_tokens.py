"""Fleet tokens: hashed, compared in constant time, reloaded, accepted in every credential form."""

from __future__ import annotations

from pathlib import Path

from ttsfleet.dataplane.tokens import TokenStore, authenticate, read_tokens
from ttsfleet.fingerprints import fingerprint_secret


def _store(tmp_path: Path, content: str) -> TokenStore:
    path = tmp_path / "tokens"
    path.write_text(content)
    store = TokenStore(path)
    assert store.reload()
    return store


def test_comments_and_blank_lines_are_not_tokens() -> None:
    assert read_tokens("# header\n\nalpha\n  beta  \n") == ["alpha", "beta"]


def test_a_known_token_is_identified_by_its_fingerprint(tmp_path: Path) -> None:
    store = _store(tmp_path, "alpha\nbeta\n")
    assert store.identify("beta") == fingerprint_secret("beta")
    assert store.identify("gamma") is None
    assert store.identify("") is None


def test_a_changed_file_is_picked_up_and_a_vanished_one_keeps_the_last_tokens(tmp_path: Path) -> None:
    store = _store(tmp_path, "alpha\n")
    assert not store.reload()
    (tmp_path / "tokens").write_text("beta\n")
    assert store.reload() and store.reloads == 1
    assert store.identify("alpha") is None and store.identify("beta")
    (tmp_path / "tokens").unlink()
    assert not store.reload()
    assert store.identify("beta")


def test_every_credential_form_authenticates(tmp_path: Path) -> None:
    store = _store(tmp_path, "alpha\n")
    token = authenticate(store, "Token alpha", None)
    bearer = authenticate(store, "Bearer alpha", None)
    subprotocol = authenticate(store, None, ["token", "alpha"])
    capitalised = authenticate(store, None, ["Token", "alpha"])
    assert token is not None and token.subprotocol is None
    assert bearer is not None
    assert subprotocol is not None and subprotocol.subprotocol == "token"
    assert capitalised is not None and capitalised.subprotocol == "Token"  # answered as offered
    assert authenticate(store, "Basic alpha", None) is None
    assert authenticate(store, None, None) is None


def test_with_auth_disabled_everyone_is_anonymous() -> None:
    outcome = authenticate(None, None, None)
    assert outcome is not None and outcome.token_id is None
