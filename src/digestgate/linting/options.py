"""Options of the tools the linter models: which ones take a value.

Global options come before a tool's subcommand (``regctl -v debug image copy``, ``crane
--verbose copy``, ``kubectl -n prod set image``); they and their values are skipped before
the subcommand is matched. Subcommand options that take a value are listed so their values
are not mistaken for operands (``regctl image copy --platform linux/amd64 SRC DST``).
Options not listed are treated as flags; ``--opt=value`` is always one word.
"""

from __future__ import annotations

from typing import Final


def _set(*words: str) -> frozenset[str]:
    return frozenset(words)


# fmt: off
_DOCKER: Final = _set(
    "-H", "--host", "-c", "--context", "--config", "-l", "--log-level",
    "--tlscacert", "--tlscert", "--tlskey",
)
_CONTAINERS: Final = _set(
    "--root", "--runroot", "--storage-driver", "--storage-opt", "--log-level",
    "--cgroup-manager", "--registries-conf", "--registries-conf-dir", "--tmpdir",
    "--runtime", "--events-backend", "--url", "--connection", "--identity", "--module",
    "--userns-uid-map", "--userns-gid-map", "--short-name-alias-conf",
)
_KUBE: Final = _set(
    "-n", "--namespace", "--context", "--kubeconfig", "--cluster", "--user", "-s",
    "--server", "--token", "--as", "--as-group", "--as-uid", "--request-timeout", "-v",
    "--certificate-authority", "--client-certificate", "--client-key",
    "--tls-server-name", "--cache-dir", "--log-file", "--profile",
)
COMPOSE: Final = _set(
    "-f", "--file", "-p", "--project-name", "--profile", "--env-file",
    "--project-directory", "--ansi", "--progress", "--parallel",
)

#: Global options that take a value, per tool (the command's base name).
GLOBAL_VALUES: Final[dict[str, frozenset[str]]] = {
    "docker": _DOCKER,
    "podman": _DOCKER | _CONTAINERS,
    "nerdctl": _DOCKER
    | _set(
        "-n", "--namespace", "-a", "--address", "--snapshotter", "--storage-driver",
        "--cgroup-manager", "--data-root", "--cni-path", "--cni-netconfpath", "--hosts-dir",
    ),
    "buildah": _CONTAINERS,
    "docker-compose": COMPOSE,
    "podman-compose": COMPOSE,
    "crane": _set("--platform"),
    "gcrane": _set("--platform"),
    "skopeo": _set(
        "--policy", "--registries.d", "--override-arch", "--override-os",
        "--override-variant", "--tmpdir", "--command-timeout", "--registries-conf",
    ),
    "regctl": _set("-v", "--verbosity", "--logopt", "--host", "--user-agent"),
    "cosign": _set("-t", "--timeout", "--output-file"),
    "helm": _set(
        "-n", "--namespace", "--kube-context", "--kubeconfig", "--registry-config",
        "--repository-config", "--repository-cache", "--kube-token", "--kube-apiserver",
        "--kube-as-user", "--kube-as-group", "--kube-ca-file", "--kube-tls-server-name",
        "--burst-limit", "--qps",
    ),
    "kubectl": _KUBE,
    "oc": _KUBE,
    "kustomize": _set("--stack-trace"),
    "buildctl": _set(
        "--addr", "--tlsservername", "--tlscacert", "--tlscert", "--tlskey", "--tlsdir",
        "--timeout", "--log-format",
    ),
    "buildctl-daemonless.sh": _set("--addr"),
    "skaffold": _set("-v", "--verbosity", "--color"),
    "gcloud": _set(
        "--project", "--account", "--configuration", "--verbosity", "--billing-project",
        "--impersonate-service-account", "--flags-file", "--format", "--trace-token",
    ),
    "az": _set("--subscription", "-o", "--output", "--query"),
    "ko": _set("--log-level"),
    "depot": _set("--token"),
    "oras": _set(),
    "pack": _set(),
    "bazel": _set(),
    "bazelisk": _set(),
    "digestgate": _set(),
}

#: Subcommand options that take a value, so operands are told from option values.
SKOPEO_COPY: Final = _set(
    "--src-creds", "--dest-creds", "--authfile", "-f", "--format", "--src-authfile",
    "--dest-authfile", "--override-arch", "--override-os", "--multi-arch", "--sign-by",
    "--src-cert-dir", "--dest-cert-dir", "--src-registry-token", "--dest-registry-token",
    "--retry-times", "--retry-delay", "--additional-tag", "--sign-by-sigstore",
    "--sign-passphrase-file", "--dest-compress-format", "--dest-compress-level",
    "--encryption-key", "--decryption-key", "--image-parallel-copies", "--src-username",
    "--src-password", "--dest-username", "--dest-password", "--dest-decompress"
)
REGCTL_COPY: Final = _set(
    "--platform", "--include-external", "-v", "--verbosity", "--logopt", "--host",
    "--annotation", "--exclude",
)
CRANE_COPY: Final = _set("--platform", "-t", "--tag", "-o", "--output", "-j", "--jobs")
ORAS_COPY: Final = _set(
    "--from-username", "--from-password", "--to-username", "--to-password",
    "--from-registry-config", "--to-registry-config", "--from-ca-file", "--to-ca-file",
    "--from-cert-file", "--to-cert-file", "--from-key-file", "--to-key-file",
    "--from-distribution-spec", "--to-distribution-spec", "--concurrency", "--platform",
    "--from-oci-layout-path", "--to-oci-layout-path", "--from-resolve", "--to-resolve",
    "--from-header", "--to-header", "--recursive-depth",
)
COSIGN_COPY: Final = _set("--platform", "--only", "-t", "--timeout")
IMAGETOOLS_CREATE: Final = _set(
    "-t", "--tag", "-f", "--file", "--annotation", "--builder", "--platform", "-p",
    "--progress",
)
COMPOSE_UP: Final = _set(
    "-t", "--timeout", "--scale", "--exit-code-from", "--pull", "--wait-timeout",
)
DOCKER_RUN: Final = _set(
    "-e", "--env", "--env-file", "-v", "--volume", "-p", "--publish", "--name", "-w",
    "--workdir", "--network", "--net", "-u", "--user", "--entrypoint", "-l", "--label",
    "--label-file", "--mount", "--platform", "--restart", "-m", "--memory", "--memory-swap",
    "--cpus", "-c", "--cpu-shares", "--cpuset-cpus", "--add-host", "--dns", "-h",
    "--hostname", "--log-driver", "--log-opt", "--gpus", "--cap-add", "--cap-drop",
    "--device", "--tmpfs", "--ulimit", "--shm-size", "--pull", "--health-cmd",
    "--health-interval", "--health-retries", "--health-timeout", "--security-opt", "--ipc",
    "--pid", "--stop-signal", "--stop-timeout", "--cidfile", "--link", "--expose",
    "--volumes-from", "--runtime", "--cgroupns", "--userns", "--uts", "--network-alias",
    "--ip", "--ip6", "--sysctl", "--storage-opt", "--annotation", "-a", "--attach",
    "--detach-keys", "--domainname", "--mac-address", "--oom-score-adj", "--isolation",
)
BUILDAH_PUSH: Final = _set(
    "--digestfile", "--authfile", "--creds", "-f", "--format", "--cert-dir", "--sign-by",
    "--retry", "--retry-delay", "--compression-format", "--compression-level",
)
# fmt: on
