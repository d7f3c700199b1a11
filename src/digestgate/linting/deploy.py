"""Command classifiers of deployments: where an image reference (or a tag) goes live.

Kubernetes and cloud CLIs that set an image (``kubectl set image``, ``helm --set
image.tag=``, ``kustomize edit set image``, ``gcloud run deploy --image``, ``az containerapp
update --image``, ...), manifest edits that write one (``yq``, ``sed`` on YAML: a GitOps
commit or a later ``kubectl apply``), and HTTP deploy calls whose payload carries an image,
tag or digest field. Each returns a promotion whose refs the DG102 rule checks.
"""

from __future__ import annotations

import re
from typing import Final

from digestgate.linting.argv import positionals
from digestgate.linting.match import Kind, Match, Ref

_MANIFEST: Final = re.compile(r"\.(ya?ml|json)$|kustomization", re.IGNORECASE)
_KEY: Final = r"(image(?:[_-]?(?:tag|ref|uri|url|digest))?|tag|digest)"
#: an Actions expression that cannot run past its own ``}}`` (so a value made of many of
#: them has one reading only, and matching it stays linear on hostile input)
EXPRESSION: Final = r"\$\{\{(?:[^}]|\}(?!\}))*\}\}"
_VALUE: Final = rf"((?:{EXPRESSION}|[^\s\"'&,}}\\])+)"
#: payload fields that carry an image: a JSON key ("image": "..."), a form or query field
#: (image=...), or an httpie item (image=... / image:=...)
_JSON_FIELD: Final = re.compile(rf"[\"']{_KEY}[\"']\s*:\s*[\"']?{_VALUE}", re.IGNORECASE)
_FORM_FIELD: Final = re.compile(rf"(?:^|[?&\s]){_KEY}:?={_VALUE}", re.IGNORECASE)
#: a yq assignment: ``.path.to.key = VALUE`` (VALUE quoted, strenv(X)/env(X), or a word)
_YQ_ASSIGN: Final = re.compile(
    r"(\.[\w.\[\]\"'-]+)\s*\|?=\s*((?:strenv|env)\(\w+\)|\"[^\"]*\"|'[^']*'|[^|)\s]+)"
)
_CURL_DATA: Final = frozenset(
    {"-d", "--data", "--data-raw", "--data-binary", "--data-urlencode", "--json", "-F",
     "--form", "--form-string"}
)  # fmt: skip


def role_of(key: str) -> str:
    """How a field or value key holds an image: ``tag``, ``digest`` or ``image``."""
    low = key.lower().replace("_", "").replace("-", "")
    if low.endswith("digest"):
        return "digest"
    if low.endswith("tag"):
        return "tag"
    return "image"


def _promotion(what: str, refs: list[Ref]) -> list[Match]:
    return [Match(Kind.PROMOTION, what, refs=tuple(refs))]


def helm(args: list[str]) -> list[Match]:
    """``helm upgrade|install`` with ``--set`` values whose key names an image."""
    if "image" not in " ".join(args).lower():
        return []
    refs: list[Ref] = []
    for value in _values(args, ("--set", "--set-string")):
        for pair in value.split(","):
            key, _, val = pair.partition("=")
            low = key.lower()
            if "image" not in low or low.endswith(("repository", "registry", "pullpolicy")):
                continue
            if not low.endswith("name"):
                refs.append(Ref(val, role_of(low)))
    return _promotion(f"helm {args[0]}", refs)


def _values(args: list[str], names: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for i, word in enumerate(args):
        if word in names and i + 1 < len(args):
            out.append(args[i + 1])
        else:
            out += [word.split("=", 1)[1] for n in names if word.startswith(n + "=")]
    return out


def kustomize(args: list[str]) -> list[Match]:
    """``kustomize edit set image OLD=NEW:TAG``: the image the overlay deploys."""
    if args[:3] != ["edit", "set", "image"]:
        return []
    refs = [Ref(a.split("=", 1)[-1]) for a in positionals(args[3:])]
    return _promotion("kustomize edit set image", refs)


def cloud(head: str, args: list[str]) -> list[Match]:
    """Cloud CLIs that deploy an image: gcloud run, az containerapp/webapp, aws lambda, fly."""
    words = " ".join(args[:3])
    images = _values(
        args,
        ("--image", "--image-url", "--image-uri", "--container-image-name",
         "--docker-custom-image-name", "-i"),
    )  # fmt: skip
    deploys = (
        (head == "gcloud" and re.match(r"(run|beta run) (deploy|services update|jobs )", words))
        or (head == "gcloud" and words.startswith("app deploy"))
        or (head == "az" and re.match(r"(containerapp|container|webapp|functionapp) ", words))
        or (head == "aws" and words.startswith("lambda update-function-code"))
        or (head in ("fly", "flyctl") and words.startswith("deploy"))
    )
    if not deploys:
        return []
    matches = _promotion(f"{head} {' '.join(args[:2])}", [Ref(i) for i in images])
    if head == "gcloud" and "--source" in " ".join(args):
        matches.insert(0, Match(Kind.BUILD, f"{head} {' '.join(args[:2])} --source"))
    return matches if images or matches[0].kind is Kind.BUILD else []


def workloads(head: str, args: list[str]) -> list[Match]:
    """``docker service create|update --image``, ``kubectl run|create deployment --image``."""
    if head == "docker" and args[:1] == ["service"] and args[1:2] in (["update"], ["create"]):
        images = _values(args, ("--image",))
        if args[1] == "create":
            images += positionals(args[2:], _SERVICE_VALUES)[:1]
        return _promotion(f"docker service {args[1]}", [Ref(i) for i in images])
    if head in ("kubectl", "oc") and (args[:1] == ["run"] or args[:2] == ["create", "deployment"]):
        return _promotion(f"{head} {args[0]}", [Ref(i) for i in _values(args, ("--image",))])
    if head == "argocd" and args[:2] == ["app", "set"]:
        pairs = _values(args, ("-p", "--parameter", "--helm-set", "--helm-set-string"))
        refs = [Ref(v, role_of(k)) for k, _, v in (p.partition("=") for p in pairs)]
        refs = [r for r, p in zip(refs, pairs, strict=True) if "image" in p.lower()]
        return _promotion("argocd app set", refs) if refs else []
    return []


_SERVICE_VALUES: Final = frozenset(
    {"--name", "--replicas", "-e", "--env", "--network", "-p", "--publish", "--mount",
     "--constraint", "--label", "-l", "--mode", "--secret", "--config", "--with-registry-auth"}
)  # fmt: skip


def http_payload(head: str, args: list[str]) -> list[Match]:
    """curl/wget/httpie/gh calls whose payload or query names an image, tag or digest."""
    texts: list[str] = []
    if head == "curl":
        texts = _values(args, tuple(_CURL_DATA))
        texts += [a for a in positionals(args, _CURL_DATA | {"-H", "-X", "-o", "-u"}) if "?" in a]
    elif head == "wget":
        texts = _values(args, ("--post-data", "--body-data"))
        texts += [a for a in args if "?" in a and not a.startswith("-")]
    elif head in ("http", "https", "xh"):
        texts = [a for a in args if re.match(r"[\w.-]+:?=", a)]
    elif head == "gh" and args[:2] == ["workflow", "run"]:
        texts = _values(args, ("-f", "--raw-field", "-F", "--field"))
    refs = [
        Ref(value, role_of(key))
        for text in texts
        for pattern in (_JSON_FIELD, _FORM_FIELD)
        for key, value in pattern.findall(text)
        if value not in ("null", "true", "false")
    ]
    return _promotion(f"{head} with an image in its payload", refs) if refs else []


def manifest_edit(head: str, args: list[str]) -> list[Match]:
    """yq/sed writing an image, tag or digest into a YAML/JSON manifest."""
    files = [a for a in positionals(args) if _MANIFEST.search(a)]
    if not files:
        return []
    refs: list[Ref] = []
    if head == "yq":
        for expression in positionals(args, frozenset({"-o", "--output-format"})):
            for path, value in _YQ_ASSIGN.findall(expression):
                key = re.sub(r"[^\w]", " ", path).split()[-1] if path.strip(".") else ""
                if "image" in path.lower() or key.lower() in ("newtag", "tag", "digest"):
                    refs.append(Ref(_yq_value(value), role_of(key)))
        if args[:1] in (["w"], ["write"]):  # yq v3: yq w -i FILE PATH VALUE
            rest = positionals(args[1:])
            if len(rest) >= 3 and ("image" in rest[1].lower() or rest[1].endswith("tag")):
                refs.append(Ref(rest[2], role_of(rest[1].rsplit(".", 1)[-1])))
    else:
        for script in _sed_scripts(args):
            refs += _sed_refs(script)
    return _promotion(f"{head} writes {files[0]}", refs) if refs else []


def _yq_value(value: str) -> str:
    text = value.strip()
    env = re.fullmatch(r"(?:strenv|env)\((\w+)\)", text)
    if env:
        return "$" + env.group(1)
    return text.strip("\"'")


def _sed_scripts(args: list[str]) -> list[str]:
    scripts = _values(args, ("-e", "--expression"))
    if not scripts:
        operands = positionals(args, frozenset({"-f"}))
        scripts = operands[:1]
    return [s for s in scripts if s.startswith("s") and len(s) > 3]


def _sed_refs(script: str) -> list[Ref]:
    """Refs a ``s/LHS/RHS/`` substitution writes: ``image: X``, ``tag: X``, or a placeholder."""
    delim = script[1]
    parts = script[2:].split(delim)
    if len(parts) < 2:
        return []
    lhs, rhs = parts[0], parts[1]
    found = re.findall(rf"\b(image|newTag|tag|digest)\s*:\s*[\"']?{_VALUE}", rhs)
    if found:
        return [Ref(value, role_of(key)) for key, value in found]
    if re.search(r"(?i)image|tag|digest", lhs) and re.fullmatch(_VALUE, rhs):
        return [Ref(rhs, role_of(re.findall(r"(?i)image|tag|digest", lhs)[-1]))]
    return []
