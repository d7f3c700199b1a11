"""Load ``policy.yaml`` strictly: every mistake is a ConfigError naming file:line:col.

Unknown fields anywhere, an unknown ``apiVersion``/``kind``, missing ``artifacts`` or
``lanes``, empty signer lists, signers that name no key, a key in two roles, impossible
thresholds, bad durations, globs, names, repositories and digests are all refused (exit 2)
with a hint saying what to write instead. Defaults are documented in docs/policy.md.

Every trusted key is loaded here, and the policy's digest covers them (design section 8):
see :func:`~digestgate.policy.trust.policy_digest`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Final, TypeVar

from digestgate.digest import Digest
from digestgate.errors import ConfigError, DigestgateError
from digestgate.policy import sigstore as identities
from digestgate.policy.lane_platforms import with_platforms
from digestgate.policy.model import (
    DEFAULT_EVENTS,
    DEFAULT_GATE_MAX_AGE,
    DEFAULT_MAX_AGE,
    KEY_NAME_RE,
    LANE_NAME_RE,
    ArtifactRule,
    GateRule,
    Glob,
    GlobError,
    LaneRule,
    Policy,
    PromotionRule,
    ProvenanceRule,
    Role,
    SourceRule,
    TrustedKey,
)
from digestgate.policy.stages import check_stage_signers, read_stages
from digestgate.policy.trust import KeyLoader, default_key_loader
from digestgate.reference import Location, parse_location, validate_artifact_name
from digestgate.timeutil import parse_duration
from digestgate.yamlsource import YMap, YNode, YScalar, YSeq, load_yaml

API_VERSION: Final = "digestgate/v1"
KIND: Final = "Policy"

_TOP: Final = (
    "apiVersion",
    "kind",
    "keys",
    "artifacts",
    "source",
    "provenance",
    "lanes",
    "maxAge",
    "sameRevision",
    "sameRun",
    "deny",
    "gate",
    "promotion",
    "platforms",
    "stage",
    "requires",
    "enforcement",
)

_MAX_DURATION: Final = timedelta(days=36500)

T = TypeVar("T")


def load_policy(path: str | Path, *, key_loader: KeyLoader | None = None) -> Policy:
    """Read and validate a policy file and load its keys (paths relative to its directory)."""
    from digestgate.fileread import read_capped
    from digestgate.yamlsource import MAX_BYTES

    file = Path(path)
    try:
        raw = read_capped(file, MAX_BYTES, what="policy file")
    except OSError as exc:
        raise ConfigError(
            f"cannot read policy file {str(path)[:200]}: {exc.strerror or exc}",
            hint="pass --policy with the path of your policy.yaml",
        ) from None
    return parse_policy(raw, source=str(path), base_dir=file.parent, key_loader=key_loader)


def parse_policy(
    raw: bytes, *, source: str, base_dir: Path, key_loader: KeyLoader | None = None
) -> Policy:
    """Validate policy bytes and load its keys; raise :class:`ConfigError` with
    ``source:line:col``. ``key_loader`` replaces the file/PEM loader (tests)."""
    loader = identities.with_identities(key_loader or default_key_loader)
    return _Reader(source, base_dir, loader).policy(raw)


class _Reader:
    def __init__(self, source: str, base_dir: Path, key_loader: identities.Loader) -> None:
        self.source = source
        self.base_dir = base_dir
        self.key_loader = key_loader
        self.key_nodes: dict[str, YNode] = {}

    # -- errors and primitives --------------------------------------------------------

    def error(self, node: YNode | None, what: str, hint: str) -> ConfigError:
        if node is None:
            return ConfigError(f"{self.source}:1:1: {what}", hint=hint)
        return ConfigError(f"{self.source}:{node.pos.line}:{node.pos.column}: {what}", hint=hint)

    def mapping(
        self, node: YNode | None, where: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> YMap:
        if not isinstance(node, YMap):
            raise self.error(node, f"{where} must be a mapping", f"write {where} as key: value")
        for key, _ in node.items():
            if key not in allowed:
                key_node = node.key_node(key)
                raise self.error(
                    key_node,
                    f"unknown field {key[:60]!r} in {where}",
                    f"allowed fields: {', '.join(allowed)}",
                )
        for key in required:
            if node.get(key) is None:
                raise self.error(
                    node.key_node(key) or node,
                    f"{where} needs {key!r}",
                    f"add {key}: to {where} (see docs/policy.md)",
                )
        return node

    def text(self, node: YNode | None, where: str) -> str:
        if not isinstance(node, YScalar) or not isinstance(node.value, str) or not node.value:
            raise self.error(node, f"{where} must be a non-empty string", "quote the value")
        return node.value

    def flag(self, node: YNode | None, where: str, default: bool) -> bool:
        if node is None:
            return default
        if not isinstance(node, YScalar) or not isinstance(node.value, bool):
            raise self.error(node, f"{where} must be true or false", "write true or false")
        return node.value

    def integer(self, node: YNode, where: str) -> int:
        value = node.value if isinstance(node, YScalar) else None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(node, f"{where} must be an integer", "write a whole number")
        return value

    def duration(self, node: YNode | None, where: str, default: timedelta) -> timedelta:
        if node is None:
            return default
        value = node.value if isinstance(node, YScalar) else None
        try:
            if not isinstance(value, str):
                raise ValueError(f"invalid duration {str(value)[:40]!r}")
            result = parse_duration(value)
        except ValueError as exc:
            raise self.error(
                node, f"{where}: {exc}", "write a number and a unit: 30s, 15m, 12h or 7d"
            ) from None
        if result <= timedelta(0):
            raise self.error(node, f"{where} must be longer than zero", "for example: 7d")
        if result > _MAX_DURATION:
            # Older cut-offs leave the calendar when subtracted from the current time.
            raise self.error(node, f"{where} must be at most 36500d", "for example: 7d")
        return result

    def items(
        self, node: YNode | None, where: str, convert: Callable[[YNode, str], T], *, empty: bool
    ) -> tuple[T, ...]:
        if node is None:
            return ()
        if not isinstance(node, YSeq):
            raise self.error(node, f"{where} must be a list", f"write {where} as [a, b]")
        if not node.items and not empty:
            raise self.error(node, f"{where} must not be empty", "list at least one entry")
        return tuple(convert(item, where) for item in node.items)

    def glob(self, node: YNode, where: str) -> Glob:
        text = self.text(node, where)
        try:
            return Glob.compile(text)
        except GlobError as exc:
            raise self.error(
                node,
                f"{where}: invalid pattern {text[:80]!r}: {exc}",
                "patterns support * (within a path segment), ** (anything) and ? only",
            ) from None

    def name(self, node: YScalar, where: str, check: Callable[[str], bool], rule: str) -> str:
        text = node.text
        if not check(text):
            raise self.error(node, f"invalid {where} name {text[:80]!r}", rule)
        return text

    # -- sections ---------------------------------------------------------------------

    def policy(self, raw: bytes) -> Policy:
        root = load_yaml(raw, source=self.source)
        doc = self.mapping(root, "the policy", _TOP, ("apiVersion", "kind", "artifacts", "lanes"))
        api = doc.get("apiVersion")
        if not isinstance(api, YScalar) or api.value != API_VERSION:
            raise self.error(api, "unknown apiVersion", f"write apiVersion: {API_VERSION}")
        kind = doc.get("kind")
        if not isinstance(kind, YScalar) or kind.value != KIND:
            raise self.error(kind, "kind must be Policy", "write kind: Policy")
        refs = self.keys(doc)
        artifacts = self.artifacts(doc.get("artifacts"))
        source = self.source_rule(doc)
        provenance = self.provenance(doc, refs)
        lanes = with_platforms(self.lanes(doc.get("lanes"), refs), doc, self.error)
        gate = self.gate(doc.get("gate"), refs)
        promotion = self.promotion(doc.get("promotion"))
        deny = frozenset(self.items(doc.get("deny"), "deny", self.deny_digest, empty=True))
        max_age = self.duration(doc.get("maxAge"), "maxAge", DEFAULT_MAX_AGE)
        same_revision = self.flag(doc.get("sameRevision"), "sameRevision", True)
        same_run = self.flag(doc.get("sameRun"), "sameRun", True)
        stage, enforcement = read_stages(self, doc, refs, gate.signers if gate else ())
        # Keys last: every mistake in the text is reported before any key file is read.
        keys = self.load_keys(refs)
        self.check_roles(keys, provenance, lanes, gate)
        check_stage_signers(self, stage, keys, provenance, lanes)
        if stage.requires is not None:
            tests = [n for lane in lanes.values() for n in lane.signers]
            clash = identities.stage_clash(keys, provenance.signers, tests, stage.requires.signers)
            if clash is not None:
                raise self.error(self.key_nodes.get(clash[0]), clash[1], identities.CLASH_HINT)
        return Policy(
            source_name=self.source,
            digest=identities.digest_with_roots(raw, keys),
            text_digest=Digest.of(raw),
            keys=keys,
            artifacts=artifacts,
            source=source,
            provenance=provenance,
            lanes=lanes,
            max_age=max_age,
            same_revision=same_revision,
            same_run=same_run,
            deny=deny,
            gate=gate,
            promotion=promotion,
            stage=stage,
            enforcement=enforcement,
        )

    def keys(self, doc: YMap) -> dict[str, identities.KeyRef]:
        """Key name -> a path (relative to the policy) or inline PEM text."""
        node = doc.get("keys")
        if node is None:
            raise self.error(
                doc, "the policy needs 'keys'", "add keys: {build: keys/build.pub, ...}"
            )
        if not isinstance(node, YMap) or not node.entries:
            raise self.error(node, "keys must map names to public key files", "build: b.pub")
        result: dict[str, identities.KeyRef] = {}
        for key, value in node.entries:
            name = self.name(
                key,
                "key",
                lambda t: KEY_NAME_RE.fullmatch(t) is not None,
                "use 1-64 letters, digits, '.', '_' or '-'",
            )
            self.key_nodes[name] = value
            if isinstance(value, YMap):  # a Sigstore identity (policy/sigstore.py)
                result[name] = identities.parse_identity(self, value, name)
                continue
            text = self.text(value, f"keys.{name}")
            if _PEM_MARKER in text:
                result[name] = text  # inline PEM: a public key written into the policy
                continue
            path = Path(text.removeprefix("file:"))
            result[name] = path if path.is_absolute() else self.base_dir / path
        return result

    def load_keys(self, refs: Mapping[str, identities.KeyRef]) -> dict[str, TrustedKey]:
        """Load every key the policy declares (all of them count in the digest)."""
        result: dict[str, TrustedKey] = {}
        for name, ref in refs.items():
            node = self.key_nodes.get(name)
            try:
                loaded = self.key_loader(ref)
            except ConfigError as exc:
                raise self.error(
                    node, f"key {name!r}: {exc.message}", exc.hint or "check the key"
                ) from None
            origin = "inline" if isinstance(ref, str) else str(ref)
            result[name] = TrustedKey(name, loaded.keyid, loaded.spki_der, origin, loaded)
        return result

    def check_roles(
        self,
        keys: Mapping[str, TrustedKey],
        provenance: ProvenanceRule,
        lanes: Mapping[str, LaneRule],
        gate: GateRule | None,
    ) -> None:
        """One key, one role: a key (by name or by key material) signs for one role only.

        A key trusted for two roles lets whoever holds it sign both, for instance a build job
        that could also sign the gate's decisions (design section 8).
        """
        listed: list[tuple[Role, str]] = [("provenance", n) for n in provenance.signers]
        listed += [("lanes", n) for lane in lanes.values() for n in lane.signers]
        listed += [("gate", n) for n in (gate.signers if gate is not None else ())]
        by_material: dict[str, tuple[Role, str]] = {}
        for role, name in listed:
            keyid = keys[name].keyid
            first = by_material.setdefault(keyid, (role, name))
            if first[0] == role:
                continue
            same = "" if first[1] == name else f" (the same key material as {first[1]!r})"
            raise self.error(
                self.key_nodes.get(name),
                f"key {name!r}{same} signs for two roles: {_ROLE_FIELDS[first[0]]} and "
                f"{_ROLE_FIELDS[role]}",
                "give each role its own key (`digestgate keygen`): one for builds, one for "
                "tests, one for the gate",
            )
        clash = identities.role_clash(listed, keys, _ROLE_FIELDS)
        if clash is not None:
            raise self.error(self.key_nodes.get(clash[0]), clash[1], identities.CLASH_HINT)

    def artifacts(self, node: YNode | None) -> dict[str, ArtifactRule]:
        if not isinstance(node, YMap) or not node.entries:
            raise self.error(
                node, "artifacts must name at least one artifact", "backend: {repository: ...}"
            )
        result: dict[str, ArtifactRule] = {}
        for key, value in node.entries:
            name = self.name(key, "artifact", _valid_artifact, _ARTIFACT_RULE)
            where = f"artifacts.{name}"
            body = self.mapping(value, where, ("repository", "evidence"), ("repository",))
            repository = self.glob(body.get("repository"), f"{where}.repository")  # type: ignore[arg-type]
            evidence = self.items(
                body.get("evidence"), f"{where}.evidence", self.repository, empty=False
            )
            if body.get("evidence") is None and not _has_wildcard(repository.pattern):
                # An exact repository is where its evidence lives too.
                evidence = (self.repository(body.get("repository"), f"{where}.repository"),)  # type: ignore[arg-type]
            result[name] = ArtifactRule(name, repository, evidence)
        return result

    def repository(self, node: YNode, where: str) -> Location:
        """An exact repository (``host/repo`` or ``oci:DIR``): no tag, digest or glob."""
        text = self.text(node, where)
        hint = "write an exact repository such as registry.example.org/org/staging/backend"
        if _has_wildcard(text):
            raise self.error(node, f"{where}: {text[:120]!r} is a pattern", hint)
        try:
            location = parse_location(text)
        except DigestgateError as exc:
            raise self.error(node, f"{where}: {exc.message}", hint) from None
        if location.tag is not None or location.digest is not None:
            raise self.error(node, f"{where}: {text[:120]!r} names a tag or digest", hint)
        return location

    def source_rule(self, doc: YMap) -> SourceRule:
        node = doc.get("source")
        if node is None:
            raise self.error(
                doc, "the policy needs 'source'", "add source: {repository: URL, refs: [...]}"
            )
        body = self.mapping(node, "source", ("repository", "refs", "events"), ("repository",))
        repository = self.text(body.get("repository"), "source.repository").rstrip("/")
        refs = self.items(body.get("refs"), "source.refs", self.glob, empty=False)
        if not refs:
            raise self.error(body, "source needs 'refs'", 'add refs: ["refs/heads/main"]')
        events = self.items(body.get("events"), "source.events", self.text, empty=False)
        return SourceRule(repository, refs, events or DEFAULT_EVENTS)

    def signers(
        self, node: YNode | None, where: str, keys: Mapping[str, object]
    ) -> tuple[str, ...]:
        if node is None:
            raise self.error(node, f"{where} needs 'signers'", "add signers: [KEYNAME]")
        names = self.items(node, where, self.text, empty=False)
        assert isinstance(node, YSeq)
        seen: set[str] = set()
        for item, name in zip(node.items, names, strict=True):
            if name not in keys:
                raise self.error(
                    item,
                    f"{where}: {name[:60]!r} is not a key name",
                    f"use one of: {', '.join(sorted(keys))} (declared under keys:)",
                )
            if name in seen:
                raise self.error(item, f"{where}: {name!r} is listed twice", "list it once")
            seen.add(name)
        return names

    def threshold(self, node: YNode | None, where: str, signers: tuple[str, ...]) -> int:
        if node is None:
            return 1
        value = self.integer(node, where)
        if value < 1 or value > len(signers):
            raise self.error(
                node,
                f"{where} must be between 1 and the number of signers ({len(signers)})",
                "a threshold counts distinct trusted keys",
            )
        return value

    def provenance(self, doc: YMap, keys: Mapping[str, object]) -> ProvenanceRule:
        node = doc.get("provenance")
        if node is None:
            raise self.error(doc, "the policy needs 'provenance'", "add provenance: {signers: []}")
        body = self.mapping(node, "provenance", ("signers", "threshold", "builder"), ("signers",))
        signers = self.signers(body.get("signers"), "provenance.signers", keys)
        builder = body.get("builder")
        return ProvenanceRule(
            signers=signers,
            threshold=self.threshold(body.get("threshold"), "provenance.threshold", signers),
            builder=None if builder is None else self.glob(builder, "provenance.builder"),
        )

    def lanes(self, node: YNode | None, keys: Mapping[str, object]) -> dict[str, LaneRule]:
        if not isinstance(node, YMap) or not node.entries:
            raise self.error(node, "lanes must name at least one lane", "e2e: {signers: [tests]}")
        result: dict[str, LaneRule] = {}
        for key, value in node.entries:
            name = self.name(
                key,
                "lane",
                lambda t: LANE_NAME_RE.fullmatch(t) is not None,
                "use 1-64 of lowercase letters, digits, '.', '_' or '-' (e.g. e2e)",
            )
            where = f"lanes.{name}"
            body = self.mapping(value, where, ("signers", "together", "platforms"), ("signers",))
            result[name] = LaneRule(
                name=name,
                signers=self.signers(body.get("signers"), f"{where}.signers", keys),
                together=self.flag(body.get("together"), f"{where}.together", False),
            )
        return result

    def gate(self, node: YNode | None, keys: Mapping[str, object]) -> GateRule | None:
        if node is None:
            return None
        body = self.mapping(node, "gate", ("signers", "maxAge"), ("signers",))
        return GateRule(
            signers=self.signers(body.get("signers"), "gate.signers", keys),
            max_age=self.duration(body.get("maxAge"), "gate.maxAge", DEFAULT_GATE_MAX_AGE),
        )

    def promotion(self, node: YNode | None) -> PromotionRule:
        if node is None:
            return PromotionRule()
        body = self.mapping(node, "promotion", ("immutableTags", "referrers"), ())
        tags = self.items(
            body.get("immutableTags"), "promotion.immutableTags", self.glob, empty=True
        )
        kinds = self.items(body.get("referrers"), "promotion.referrers", self.glob, empty=True)
        return PromotionRule(immutable_tags=tags, referrers=kinds)

    def deny_digest(self, node: YNode, where: str) -> Digest:
        text = self.text(node, where)
        try:
            return Digest.parse(text)
        except DigestgateError as exc:
            raise self.error(node, f"{where}: {exc.message}", exc.hint or "") from None


_PEM_MARKER: Final = "-----BEGIN"

_ROLE_FIELDS: Final[dict[Role, str]] = {
    "provenance": "provenance.signers",
    "lanes": "lanes.*.signers",
    "gate": "gate.signers",
}


def _has_wildcard(text: str) -> bool:
    return any(c in text for c in "*?")


_ARTIFACT_RULE: Final = (
    "use 1-64 of lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
)


def _valid_artifact(name: str) -> bool:
    try:
        validate_artifact_name(name)
    except DigestgateError:
        return False
    return True
