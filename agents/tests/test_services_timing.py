"""agents.services.timing: the trigger checks agents are created and updated with."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from agents.services.timing import InvalidTrigger, check_cron, check_interval, min_interval, zone


def test_min_interval_follows_the_setting(settings):
    settings.AGENT_MIN_INTERVAL_S = 90
    assert min_interval() == 90.0


@pytest.mark.parametrize("name", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires"])
def test_zone_accepts_iana_names(name):
    assert zone(name) == ZoneInfo(name)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", "Europe/Berlin\x00"])
def test_zone_refuses_anything_else_as_invalid_trigger(name):
    with pytest.raises(InvalidTrigger) as exc:
        zone(name)
    assert exc.value.code == "invalid_trigger" and "trigger" in exc.value.fields


def test_check_interval_refuses_below_the_minimum(settings):
    settings.AGENT_MIN_INTERVAL_S = 60
    check_interval(60)
    with pytest.raises(InvalidTrigger) as exc:
        check_interval(59)
    assert exc.value.fields == {"trigger": ["Must be at least 60 seconds."]}


def test_check_cron_accepts_five_fields_spaced_wide_enough(settings):
    settings.AGENT_MIN_INTERVAL_S = 60
    check_cron("*/5 * * * *", "UTC")
    check_cron("0 3 * * 1-5", "Europe/Berlin")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "Use five cron fields."),
        ("* * * * * *", "Use five cron fields."),
        ("61 * * * *", "Invalid."),
        ("not a cron at all", "Invalid."),
        ("* * * * *", "Ticks must be at least 300 s apart."),
        ("0,1 * * * *", "Ticks must be at least 300 s apart."),
    ],
)
def test_check_cron_refuses_bad_or_too_frequent_expressions(settings, expression, message):
    settings.AGENT_MIN_INTERVAL_S = 300
    with pytest.raises(InvalidTrigger) as exc:
        check_cron(expression, "UTC")
    assert exc.value.code == "invalid_trigger"
    assert exc.value.fields == {"trigger": [message]}


def test_check_cron_refuses_an_unknown_zone(settings):
    with pytest.raises(InvalidTrigger) as exc:
        check_cron("0 3 * * *", "Nowhere/City")
    assert exc.value.fields == {"trigger": ["Unknown time zone 'Nowhere/City'."]}
