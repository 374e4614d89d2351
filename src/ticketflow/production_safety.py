"""Refuse to run in production with the demo secrets: anyone who read our README could mint
tokens for any account, or sign payment webhooks."""

from __future__ import annotations

from ticketflow.config import DEMO_JWT_SECRET, Settings

MIN_SECRET_LENGTH = 32  # HS256 keys shorter than the hash (32 bytes) weaken it (RFC 7518 3.2)
# Values our own examples show (README, deploy/k8s/secret.example.yaml): never a real secret.
DOCUMENTED_EXAMPLES = frozenset(
    {
        DEMO_JWT_SECRET,
        str(Settings.model_fields["payment_webhook_secret"].default),
        "CHANGE-ME",
    }
)


def _weak(secret: str) -> str | None:
    """What is wrong with `secret` as a production secret, if anything."""
    if secret.strip().upper() in {example.upper() for example in DOCUMENTED_EXAMPLES}:
        return "is a documented example"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


class UnsafeProductionSettings(RuntimeError):
    pass


def _jwt_keys(settings: Settings) -> dict[str, str]:
    """The JWT keys by name, as signing will use them; without the generated development one,
    which is random and known to nobody (adapters/security.py SigningKeys.from_settings)."""
    if settings.jwt_keys:
        return settings.jwt_keys
    if settings.dev_jwt_secret_file is not None:
        return {}
    return {"(TICKETFLOW_JWT_SECRET)": settings.jwt_secret or DEMO_JWT_SECRET}


def production_problems(settings: Settings) -> list[str]:
    """What makes these settings unfit for production; empty when they are fit (or not prod)."""
    if settings.environment != "production":
        return []
    problems = []
    for kid, secret in _jwt_keys(settings).items():
        if secret == DEMO_JWT_SECRET:
            problems.append(f"JWT key {kid} is unset or the demo secret: set TICKETFLOW_JWT_SECRET")
        elif (weakness := _weak(secret)) is not None:
            problems.append(f"JWT key {kid} {weakness}")
    demo_webhook_secret = Settings.model_fields["payment_webhook_secret"].default
    if settings.payment_webhook_secret == demo_webhook_secret:
        problems.append(
            "the payment webhook secret is the demo one: set TICKETFLOW_PAYMENT_WEBHOOK_SECRET"
        )
    elif (weakness := _weak(settings.payment_webhook_secret)) is not None:
        problems.append(f"the payment webhook secret {weakness}")
    return problems


def example_secrets(settings: Settings) -> list[str]:
    """The secrets that are documented examples, in any environment: fine for a demo on this
    machine, never for a server others can reach (they could mint an admin's token)."""
    named = [(f"JWT key {kid}", secret) for kid, secret in _jwt_keys(settings).items()]
    named.append(("the payment webhook secret", settings.payment_webhook_secret))
    examples = {example.upper() for example in DOCUMENTED_EXAMPLES}
    return [name for name, secret in named if secret.strip().upper() in examples]


def refuse_unsafe_production(settings: Settings) -> None:
    if problems := production_problems(settings):
        raise UnsafeProductionSettings(
            "refusing to start in production: " + "; ".join(problems) + "."
        )
