"""Personal data detection: each detector on real-looking values, then in the profile."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.data.personal import (
    column_name_hint,
    detect_values,
    iban_valid,
    luhn_valid,
    phone_detection_available,
)
from shipyard.data.profile import profile_table
from shipyard.data.report import render_html

ROWS = 600


def luhn_complete(body: str) -> str:
    """Append the Luhn check digit to ``body``."""
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("no check digit")


def iban(country: str, bban: str) -> str:
    """Return an IBAN with correct mod-97 check digits."""
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"{country}{check:02d}{bban}"


def test_luhn_accepts_real_cards_and_refuses_one_digit_off():
    for card in ("4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009"):
        assert luhn_valid(card), card
    for card in ("4111 1111 1111 1112", "1234", "4111x1111x1111x1111"):
        assert not luhn_valid(card), card


def test_iban_mod_97():
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert iban_valid("DE89370400440532013000")
    assert iban_valid(iban("FR", "20041010050500013M02606"))
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")  # one digit off
    assert not iban_valid("DE89370400440532013001")
    assert not iban_valid("hello world")


def test_detectors_report_shares_and_ignore_missing():
    assert detect_values(["ann@example.org", "bob@mail.example.com", "not an email", None]) == {
        "email": pytest.approx(0.6667)
    }
    assert detect_values(["10.0.0.1", "2001:db8::ff00:42:8329", "999.1.1.1", "1.2.3"]) == {
        "ip": 0.5
    }
    assert detect_values(["", None, float("nan")]) == {}
    if phone_detection_available():
        assert detect_values(["+44 20 7946 0958", "+1 202-456-1111", "hello"]) == {
            "phone": pytest.approx(0.6667)
        }
        # Plain digit strings are identifiers as often as phone numbers: not counted.
        assert detect_values(["2024561111", "4155552671"]) == {}


def test_random_digit_ids_are_not_cards():
    generator = random.Random(0)
    ids = [str(generator.randrange(10**15, 10**16)) for _ in range(500)]
    # About one in ten passes the Luhn check by chance: below the share cards need.
    assert "card" not in detect_values(ids)


def test_column_name_hints():
    assert column_name_hint("customerEmail") == "email"
    assert column_name_hint("first_name") == "name"
    assert column_name_hint("Phone Number") == "phone"
    assert column_name_hint("age") is None
    assert column_name_hint("native-country") is None


@pytest.fixture(scope="module")
def with_pii(adult) -> pd.DataFrame:
    """600 Adult rows plus synthetic personal columns, with some wrong values mixed in."""
    generator = random.Random(1)
    frame = adult.train.sample(ROWS, random_state=0).reset_index(drop=True)
    frame["contact"] = [
        f"person{index}@example.org" if index % 4 else "unknown" for index in range(ROWS)
    ]
    frame["card_number"] = [
        luhn_complete("4" + "".join(generator.choice("0123456789") for _ in range(14)))
        for _ in range(ROWS)
    ]
    frame["account"] = [
        iban("DE", "".join(generator.choice("0123456789") for _ in range(18))) for _ in range(ROWS)
    ]
    frame["client_ip"] = [
        f"192.168.{index % 256}.{index % 200}" if index % 2 else f"2001:db8::{index:x}"
        for index in range(ROWS)
    ]
    frame["order_code"] = [  # digits that fail Luhn: not cards
        str(int(card) + 1) for card in frame["card_number"]
    ]
    return frame


def test_profile_flags_personal_columns_and_not_adult_ones(with_pii):
    found = profile_table(with_pii, target="income")
    personal = found.personal()
    assert set(personal) == {"contact", "card_number", "account", "client_ip"}
    assert personal["contact"]["values"] == {"email": 0.75}
    assert personal["card_number"]["values"] == {"card": 1.0}
    assert personal["account"]["values"] == {"iban": 1.0}
    assert personal["client_ip"]["values"] == {"ip": 1.0}
    assert personal["card_number"]["hint"] == "card"
    assert found.column("order_code").personal == {}
    for name in ("age", "sex", "race", "native-country", "occupation"):
        assert not found.column(name).looks_personal, name
    assert "data.personal: [contact, card_number, account, client_ip]" in " ".join(found.warnings)
    assert found.personal_config() is not None
    assert "personal: [contact, card_number, account, client_ip]" in found.personal_config()
    assert found.summary()["personal"] == personal


def test_profile_json_html_and_terminal_show_personal_data(with_pii, tmp_path):
    source = tmp_path / "people.csv"
    with_pii.to_csv(source, index=False)
    report = tmp_path / "people.profile.html"
    result = CliRunner().invoke(app, ["profile", str(source), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "Likely personal data" in result.output
    assert "card_number: card 100%" in result.output
    assert "personal_data: hash" in result.output
    document = json.loads(report.with_suffix(".json").read_text())
    assert document["personal"]["account"]["values"] == {"iban": 1.0}
    assert "personal: [contact, card_number, account, client_ip]" in document["personal_config"]
    page = report.read_text()
    assert "<h2>Personal data</h2>" in page
    assert "iban (100% of sampled values)" in page
    assert "<h2>Personal data</h2>" not in render_html(profile_table(with_pii[["age", "sex"]]))
