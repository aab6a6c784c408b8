"""The provider factory and the fallback chain that always ends with the offline engine.

``AGENT_PROVIDERS`` is an ordered chain such as ``anthropic:<model>,openai:<model>,offline``.
Every call goes through the resilience layer (``resilient_call`` with
``ServiceType.LLM``; breakers named after the provider), which owns retries — the SDKs
are built with ``max_retries=0``. What happens per failure:

* rate limited (429) → backoff honouring ``Retry-After`` (resilience layer), then the
  next provider if the retries run out;
* model unavailable (503/404) → failures counted by the provider's breaker; once it is
  open the provider is skipped at once → next provider / fallback model;
* authentication error (401/403) → no retry; the provider is dropped for the rest of the
  run, the bad credential is reported in the diagnosis notes;
* timeout → retried with a larger timeout (resilience layer);
* overloaded (529) → breaker, and a degraded answer from the offline engine if nothing
  else is left.

When every LLM provider fails, :class:`AllProvidersFailed` carries the notes; the graph
then concludes with the offline engine (mode ``degraded``).
"""

from __future__ import annotations

from pydantic import SecretStr

from agent.providers.anthropic_provider import AnthropicProvider
from agent.providers.base import ChatMessage, LLMCall, LLMProvider, LLMReply, ToolDef
from agent.providers.openai_provider import OPENROUTER_BASE_URL, OpenAIProvider
from guilde_core.config import ServiceType, Settings
from guilde_core.errors import (
    AuthenticationError,
    CircuitOpenError,
    ConfigurationError,
    GuildeError,
    OperationTimeoutError,
    RateLimitedError,
    ServiceUnavailableError,
    classify,
)
from guilde_core.redaction import redact_text

__all__ = [
    "AllProvidersFailed",
    "ProviderChain",
    "build_chain",
    "parse_chain",
]

KNOWN = ("openai", "anthropic", "openrouter", "offline")


class AllProvidersFailed(Exception):
    """No LLM provider of the chain could answer; ``notes`` say why, one per provider."""

    def __init__(self, notes: list[str]) -> None:
        super().__init__("; ".join(notes) or "no LLM provider configured")
        self.notes = notes


def parse_chain(entries: list[str]) -> list[tuple[str, str]]:
    """``["anthropic:claude-x", "offline"]`` → ``[("anthropic", "claude-x"), ("offline", "")]``."""
    chain: list[tuple[str, str]] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        kind, _, model = entry.partition(":")
        kind = kind.strip().lower()
        if kind not in KNOWN:
            raise ConfigurationError(
                f"AGENT_PROVIDERS: unknown provider {kind!r} in {entry!r} "
                f"(expected one of {', '.join(KNOWN)})"
            )
        if kind != "offline" and not model.strip():
            raise ConfigurationError(f"AGENT_PROVIDERS: {entry!r} needs a model ({kind}:<model>)")
        chain.append((kind, model.strip()))
    if not chain or chain[-1][0] != "offline":
        chain.append(("offline", ""))
    return chain


def _secret(value: SecretStr | None) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() or None


def build_chain(settings: Settings, spec: list[str] | str | None = None) -> ProviderChain:
    """Providers from ``spec`` (or ``settings.agent_providers``), offline engine last."""
    if isinstance(spec, str):
        spec = [p for p in spec.split(",") if p.strip()]
    entries = parse_chain(list(spec) if spec else list(settings.agent_providers))
    providers: list[LLMProvider] = []
    notes: list[str] = []
    for kind, model in entries:
        if kind == "offline":
            break
        if kind == "anthropic":
            key, base = _secret(settings.anthropic_api_key), settings.anthropic_base_url
        elif kind == "openai":
            key, base = _secret(settings.openai_api_key), settings.openai_base_url
        else:
            key = _secret(settings.openrouter_api_key)
            base = settings.openrouter_base_url or OPENROUTER_BASE_URL
        if key is None and not (base and kind != "openrouter"):
            notes.append(f"{kind}:{model}: skipped, no API key configured")
            continue
        if kind == "anthropic":
            providers.append(AnthropicProvider(model, api_key=key, base_url=base))
        else:
            providers.append(OpenAIProvider(model, api_key=key, base_url=base, name=kind))
    return ProviderChain(providers, settings, notes=notes)


def _describe(provider: LLMProvider, err: GuildeError) -> str:
    who = f"{provider.name}:{provider.model}"
    if isinstance(err, AuthenticationError):
        return (
            f"{who}: bad credential — the provider rejected the API key "
            f"(HTTP {err.status_code or 401}); not retried, check {provider.name.upper()}_API_KEY"
        )
    if isinstance(err, CircuitOpenError):
        return f"{who}: circuit '{err.name}' is open; skipped"
    if isinstance(err, RateLimitedError):
        return f"{who}: rate limited (429) after retries honouring Retry-After"
    if isinstance(err, ServiceUnavailableError):
        what = "overloaded (529)" if err.overloaded else f"unavailable ({err.status_code})"
        return f"{who}: {what} after retries"
    if isinstance(err, OperationTimeoutError):
        return f"{who}: timed out after retries with growing timeouts"
    return f"{who}: {err.code}: {err.message}"


class ProviderChain:
    """Ordered LLM providers tried in turn through the resilience layer."""

    def __init__(
        self,
        providers: list[LLMProvider],
        settings: Settings,
        *,
        notes: list[str] | None = None,
        call: LLMCall | None = None,
    ) -> None:
        self.providers = list(providers)
        self.settings = settings
        self.notes: list[str] = list(notes or [])
        self.dropped: set[str] = set()
        self._call = call

    @property
    def has_llm(self) -> bool:
        return bool(self.providers)

    @property
    def configured_llm(self) -> bool:
        """An LLM was asked for (even if none could be built, e.g. missing keys)."""
        return bool(self.providers) or bool(self.notes)

    def _resilient(self) -> LLMCall:
        if self._call is None:
            from agent.providers.resilience import get_resilient_call

            self._call = get_resilient_call()
        return self._call

    async def complete(
        self, messages: list[ChatMessage], tools: list[ToolDef], *, max_tokens: int = 1024
    ) -> LLMReply:
        """The first provider that answers; raises :class:`AllProvidersFailed` otherwise."""
        call = self._resilient()
        tried = False
        for provider in self.providers:
            key = f"{provider.name}:{provider.model}"
            if key in self.dropped:
                continue
            tried = True

            async def attempt(
                timeout: float | None,  # noqa: ASYNC109 - the resilience layer's contract
                p: LLMProvider = provider,
            ) -> LLMReply:
                return await p.complete(messages, tools, timeout=timeout, max_tokens=max_tokens)

            try:
                reply = await call(provider.name, attempt, service_type=ServiceType.LLM)
            except Exception as exc:
                err = classify(exc, service=provider.name)
                self.notes.append(redact_text(_describe(provider, err)))
                self.dropped.add(key)
                continue
            return reply
        if not tried and not self.notes:
            raise AllProvidersFailed(["no LLM provider configured"])
        raise AllProvidersFailed(list(self.notes))

    async def aclose(self) -> None:
        for provider in self.providers:
            closer = getattr(provider, "aclose", None)
            if closer is not None:
                await closer()
