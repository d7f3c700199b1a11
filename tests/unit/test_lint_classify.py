"""Classification of commands and actions."""

from __future__ import annotations

import re

import pytest

from digestgate.linting.classify import (
    Kind,
    action_ref,
    classify_action,
    classify_command,
    script_ref,
)
from digestgate.linting.config import LintConfig

CFG = LintConfig()


def kinds(command: str, config: LintConfig = CFG) -> set[Kind]:
    return {m.kind for m in classify_command(tuple(command.split()), config)}


@pytest.mark.parametrize(
    "command",
    [
        "docker build .",
        "docker buildx build --push .",
        "docker buildx bake",
        "docker compose build",
        "docker-compose build web",
        "docker image build .",
        "docker --context remote build .",
        "buildah bud -t x .",
        "buildah build .",
        "podman build .",
        "podman buildx build .",
        "/kaniko/executor --context .",
        "ko build ./cmd/app",
        "ko publish ./cmd/app",
        "nerdctl build .",
        "buildctl build --frontend dockerfile.v0",
        "pack build app --publish",
        "bazel run //images:push",
        "sudo -E docker build .",
        "env A=1 docker build .",
        "docker run -v /w:/w gcr.io/kaniko-project/executor:latest --context /w",
        "mvn -B jib:build",
        "crane mutate app@sha256:x --label a=b",
        # global options before the subcommand
        "podman --root /r --storage-driver vfs build .",
        "buildah --storage-driver=vfs bud .",
        "nerdctl --namespace k8s.io build .",
        "docker --log-level debug buildx build .",
        "skaffold -v info build",
        "buildctl --addr tcp://b:1234 build --frontend dockerfile.v0",
    ],
)
def test_builds(command: str) -> None:
    assert Kind.BUILD in kinds(command)


@pytest.mark.parametrize(
    "command",
    [
        "docker build --help",
        "echo docker build",
        "docker pull x",
        "bazel run //app:server",
        "docker buildx imagetools inspect x",
        "ko version",
    ],
)
def test_not_builds(command: str) -> None:
    assert Kind.BUILD not in kinds(command)


@pytest.mark.parametrize(
    "command",
    [
        "pytest -q",
        "python -m pytest",
        "python3.12 -m unittest",
        "tox -e py",
        "nox",
        "go test ./...",
        "cargo test",
        "npm test",
        "npm run test:e2e",
        "yarn test",
        "pnpm test",
        "npx jest",
        "vitest run",
        "mocha",
        "npx playwright test",
        "cypress run",
        "make test-integration",
        "make check",
        "gradle test",
        "./gradlew check",
        "mvn verify",
        "mvn test",
        "uv run pytest",
        "poetry run pytest",
        "docker compose run --rm api pytest",
        "docker run --rm img npm test",
        "digestgate attest test-result --lane e2e",
        # wrappers with their own options, workspaces, modules and framework runners
        "pipenv --python 3.11 run pytest",
        "poetry -C backend run pytest -q",
        "uv run --with pytest --frozen pytest",
        "conda run -n env pytest",
        "xvfb-run -a npm test",
        "pnpm -F api test",
        "pnpm --filter=web run test:unit",
        "npm -w packages/api test",
        "npm it",
        "yarn workspace @acme/web test",
        "yarn workspaces foreach -A --include x run test",
        "yarn jest --ci",
        "coverage run manage.py test",
        "coverage run --source=x -m pytest",
        "python -m coverage run -m pytest",
        "python3 -X dev -W error -m pytest",
        "python manage.py test",
        "./manage.py test app",
        "php artisan test --parallel",
        "./vendor/bin/pest",
        "bundle exec rake test",
        "bin/rails test",
        "hatch run test:all",
        "hatch test",
        "pdm run test",
        "composer test",
        "nx test api",
        "nx run api:test:ci",
        "nx affected -t lint,test",
        "turbo run test --filter=web",
        "./gradlew :app:testDebugUnitTest",
        "gradle build --tests 'x.*'",
        "./mvnw -pl api -am verify",
        "make -C backend test",
    ],
)
def test_validation(command: str) -> None:
    assert Kind.VALIDATION in kinds(command)


@pytest.mark.parametrize(
    "command",
    [
        "npm run build",
        "make",
        "make lint",
        "ruff check .",
        "go build ./...",
        "echo pytest",
        # builds whose tests are switched off, and look-alikes
        "gradle build -x test",
        "./gradlew -x test build",
        "./gradlew clean build -x test",
        "mvn -B package -DskipTests",
        "mvn -B -DskipTests verify",
        "mvn -D skipTests verify",
        "mvn verify -Dmaven.test.skip=true",
        "mvn package",
        "gradle build",
        "gradle testClasses",
        "pnpm -F api build",
        "yarn workspace web build",
        "python manage.py migrate",
        "python -c 'import pytest'",
        "test -f x",
        "pdm run lint",
        "nx build api",
        "turbo run build",
    ],
)
def test_not_validation(command: str) -> None:
    assert Kind.VALIDATION not in kinds(command)


@pytest.mark.parametrize(
    ("command", "ref"),
    [
        ("crane copy a@sha256:x b:1", "a@sha256:x"),
        ("crane cp a b", "a"),
        ("crane tag a@sha256:x v1", "a@sha256:x"),
        ("skopeo copy --all docker://a:1 docker://b:1", "docker://a:1"),
        ("regctl image copy a b", "a"),
        ("oras cp a b", "a"),
        ("cosign copy a b", "a"),
        ("docker buildx imagetools create -t b:1 a@sha256:x", "a@sha256:x"),
        ("kubectl set image deploy/x c=a:1", "a:1"),
        # global options before the subcommand, option values before the operands
        ("regctl -v debug image copy a:1 b:1", "a:1"),
        ("regctl --verbosity=info --host reg=x image copy a:1 b:1", "a:1"),
        ("crane --verbose copy a:1 b:1", "a:1"),
        ("crane --platform linux/amd64 copy a:1 b:1", "a:1"),
        ("skopeo --debug --policy p.json copy docker://a:1 docker://b:1", "docker://a:1"),
        ("oras --debug cp --from-username u a:1 b:1", "a:1"),
        ("cosign --timeout 5m copy a:1 b:1", "a:1"),
        ("kubectl -n prod --context c set image deploy/x c=a:1", "a:1"),
        ("regctl image copy --platform linux/amd64 a:1 b:1", "a:1"),
        ("skopeo copy --src-creds u:p --retry-times 3 docker://a:1 docker://b:1", "docker://a:1"),
    ],
)
def test_promotions_and_their_source(command: str, ref: str) -> None:
    matches = [m for m in classify_command(tuple(command.split()), CFG) if m.kind is Kind.PROMOTION]
    assert [r.text for r in matches[0].refs] == [ref]


def test_deploys_and_digestgate() -> None:
    assert Kind.PROMOTION in kinds("digestgate promote --release r.json")
    assert Kind.CONSUME in kinds("digestgate verify a@sha256:x")
    assert Kind.CAPTURE in kinds("digestgate capture app x")
    assert Kind.PROMOTION in kinds("docker stack deploy -c s.yml app")
    assert Kind.PROMOTION in kinds("docker compose up -d")
    assert Kind.PROMOTION in kinds("helm upgrade app ./c --set image.tag=1")
    assert Kind.PROMOTION not in kinds("helm upgrade app ./c")


def test_config_patterns() -> None:
    config = LintConfig(
        build_commands=(re.compile(r"^make image"),),
        validation_commands=(re.compile(r"^./smoke"),),
        promotion_commands=(re.compile(r"^release-tool ship"),),
    )
    assert Kind.BUILD in kinds("make image", config)
    assert Kind.VALIDATION in kinds("./smoke", config)
    assert Kind.PROMOTION in kinds("release-tool ship x", config)


def test_action_refs() -> None:
    assert action_ref("actions/checkout@v4").name == "actions/checkout"
    assert action_ref("https://gitea.com/actions/checkout@v4").name == "actions/checkout"
    assert action_ref("https://evil.example/actions/checkout@v4").name == (
        "evil.example/actions/checkout"
    )
    assert action_ref("./.github/actions/x").kind == "local"
    assert action_ref("docker://alpine:3").kind == "docker"


def test_action_classes() -> None:
    def k(uses: str, **with_: str) -> set[Kind]:
        return {m.kind for m in classify_action(action_ref(uses), with_, CFG)}

    assert k("actions/checkout@v4") == set()
    assert k("actions/setup-python@v5") == set()
    assert k("docker/build-push-action@v6", push="true") == {Kind.BUILD}
    assert k("actions/github-script@v7") == {Kind.OPAQUE}
    assert k("https://evil.example/actions/checkout@v4") == {Kind.OPAQUE}
    assert k("docker://gcr.io/kaniko-project/executor:v1") == {Kind.BUILD}
    assert k("actions/download-artifact@v4", name="release-json") == {Kind.CONSUME}
    assert {
        m.kind
        for m in classify_action(
            action_ref("acme/x@v1"), {}, LintConfig(harmless_actions=("acme/*",))
        )
    } == set()


def test_script_refs() -> None:
    assert script_ref(("./ci/build.sh", "x")) == "./ci/build.sh"
    assert script_ref(("bash", "ci/build.sh")) == "ci/build.sh"
    assert script_ref(("source", "env.sh")) == "env.sh"
    assert script_ref(("bash", "-c", "docker build .")) is None
    assert script_ref(("/usr/bin/tool",)) is None
    assert script_ref(("make", "build")) is None


@pytest.mark.parametrize(
    "command",
    [
        'docker buildx imagetools create "${tags[@]}" "${sources[@]}"',
        "docker buildx imagetools create ${tags[*]} ${refs[*]}",
        'crane copy "$1@$2" "$3"',
        'crane copy "$@"',
        'regctl image copy "${SRC}@${DIGEST}" dst 2>&1',
    ],
)
def test_expansions_are_opaque_not_digests(command: str) -> None:
    from digestgate.linting.model import Loc, Workflow
    from digestgate.linting.refs import Resolver, ref_problem
    from digestgate.linting.shell import commands

    resolver = Resolver(Workflow("w.yml", Loc("w.yml", 1, 1), ()), {})
    (cmd,) = commands(command)
    (match,) = [m for m in classify_command(cmd.argv, CFG) if m.kind is Kind.PROMOTION]
    assert [ref_problem(r.text, resolver, "", None) for r in match.refs] == [None] * len(match.refs)


def test_helm_after_global_options_sets_a_tag() -> None:
    command = "helm --kube-context p -n x upgrade a ./c --set image.tag=1"
    (match,) = classify_command(tuple(command.split(" ")), CFG)
    assert (match.kind, [(r.text, r.role) for r in match.refs]) == (
        Kind.PROMOTION,
        [("1", "tag")],
    )


@pytest.mark.parametrize(
    ("uses", "inputs", "pushes"),
    [
        ("depot/build-push-action@v1", {"push": "true"}, True),
        ("depot/bake-action@v1", {"push": "false"}, False),
        ("docker/build-push-action@v6", {"load": "true", "tags": "app:test"}, False),
        (
            "docker/build-push-action@v6",
            {"outputs": "type=image,push-by-digest=true,push=true"},
            True,
        ),
        ("aevea/action-kaniko@v0.12", {"image": "acme/app"}, True),
        ("https://github.com/int128/kaniko-action@v1", {"push": "true"}, True),
        ("acme/builder@v2", {"context": ".", "tags": "a:1"}, True),
        ("acme/builder@v2", {"file": "deploy/Dockerfile", "image": "a", "push": "false"}, False),
        ("acme/bake@v2", {"files": "docker-bake.hcl", "targets": "all", "push": "true"}, True),
    ],
)
def test_build_actions_known_and_inferred(uses: str, inputs: dict[str, str], pushes: bool) -> None:
    (match,) = classify_action(action_ref(uses), inputs, CFG)
    assert (match.kind, match.pushes) == (Kind.BUILD, pushes)


@pytest.mark.parametrize(
    ("uses", "inputs"),
    [
        ("acme/image-audit@v4", {"image-ref": "a:1", "format": "sarif"}),
        ("acme/notify@v1", {"message": "built a:1", "tags": "release"}),
        ("acme/upload@v1", {"file": "report.json", "repository": "x"}),
    ],
)
def test_inputs_without_a_build_stay_opaque(uses: str, inputs: dict[str, str]) -> None:
    assert [m.kind for m in classify_action(action_ref(uses), inputs, CFG)] == [Kind.OPAQUE]


@pytest.mark.parametrize(
    ("command", "image", "detached", "long_lived"),
    [
        ("docker run --rm -v /w:/w -e A=1 app:ci selftest", "app:ci", False, False),
        ("docker run -d --restart unless-stopped -p 80:80 app:1", "app:1", True, True),
        ("docker container run -itd --name web --network=n app", "app", True, True),
        ("podman run --pull always --rm app@sha256:x", "app@sha256:x", False, False),
    ],
)
def test_docker_run_names_its_image(
    command: str, image: str, detached: bool, long_lived: bool
) -> None:
    (run,) = [m for m in classify_command(tuple(command.split()), CFG) if m.kind is Kind.RUN]
    assert ([r.text for r in run.refs], run.detached, run.long_lived) == (
        [image],
        detached,
        long_lived,
    )


@pytest.mark.parametrize(
    ("command", "refs"),
    [
        (
            "kustomize edit set image web=r/web:1 api=r/api@sha256:x",
            [("r/web:1", "image"), ("r/api@sha256:x", "image")],
        ),
        ("yq -i '.image.tag = strenv(TAG)' values.yaml", [("$TAG", "tag")]),
        ("yq e -i '.spec.containers[0].image = \"r/a:1\"' d.yaml", [("r/a:1", "image")]),
        ("yq w -i values.yaml image.tag 1.2", [("1.2", "tag")]),
        ("sed -i 's|image: .*|image: r/a:$V|' k8s/d.yaml", [("r/a:$V", "image")]),
        ("sed -i s/IMAGE_TAG/$SHA/ k8s/d.yml", [("$SHA", "tag")]),
        ('curl -X POST https://d/x -d \'{"image": "r/a:1"}\'', [("r/a:1", "image")]),
        ('curl -X POST https://d/x --json \'{"digest": "$D"}\'', [("$D", "digest")]),
        ("curl -X POST 'https://d/hook?image=r/a:1&t=x'", [("r/a:1", "image")]),
        ("http POST https://d/x image=r/a:1", [("r/a:1", "image")]),
        ("gh workflow run deploy.yml -f image=r/a:1", [("r/a:1", "image")]),
        ("gcloud --project p run deploy api --image r/a:1", [("r/a:1", "image")]),
        ("az containerapp update -n a --image r/a:1", [("r/a:1", "image")]),
        ("docker service update --image r/a:1 stack_web", [("r/a:1", "image")]),
        ("kubectl run debug --image=r/a:1", [("r/a:1", "image")]),
        ("argocd app set web -p image.tag=1.2", [("1.2", "tag")]),
    ],
)
def test_deploys_and_the_image_they_set(command: str, refs: list[tuple[str, str]]) -> None:
    from digestgate.linting.shell import commands

    (cmd,) = commands(command)
    (match,) = [m for m in classify_command(cmd.argv, CFG) if m.kind is Kind.PROMOTION]
    assert [(r.text, r.role) for r in match.refs] == refs


@pytest.mark.parametrize(
    "command",
    [
        "sed -i 's/FROM node:.*/FROM node:20/' Dockerfile",
        'curl -fsS -X POST $HOOK -d \'{"text": "deployed image a:1"}\'',
        "curl -fsS https://example.org/health",
        "yq '.version' chart/Chart.yaml",
        "gcloud run services list",
        "kubectl get pods",
    ],
)
def test_look_alikes_deploy_nothing(command: str) -> None:
    from digestgate.linting.shell import commands

    (cmd,) = commands(command)
    assert Kind.PROMOTION not in {m.kind for m in classify_command(cmd.argv, CFG)}


@pytest.mark.parametrize(
    ("uses", "inputs", "refs"),
    [
        ("aws-actions/amazon-ecs-render-task-definition@v1", {"image": "r/a:1"}, ["r/a:1"]),
        ("azure/k8s-deploy@v5", {"images": "r/a@sha256:x\nr/b:1"}, ["r/a@sha256:x", "r/b:1"]),
        (
            "azure/webapps-deploy@v3",
            {"images": "ghcr.io/${{ env.R }}:${{ github.sha }}"},
            ["ghcr.io/${{ env.R }}:${{ github.sha }}"],
        ),
        ("google-github-actions/deploy-cloudrun@v2", {"image": "r/a:1"}, ["r/a:1"]),
        ("acme/deploy-to-k8s@v1", {"image": "r/a:1", "cluster": "c"}, ["r/a:1"]),
        ("aws-actions/amazon-ecs-deploy-task-definition@v2", {"task-definition": "t.json"}, []),
    ],
)
def test_deploy_actions_and_their_image_inputs(
    uses: str, inputs: dict[str, str], refs: list[str]
) -> None:
    matches = classify_action(action_ref(uses), inputs, CFG)
    assert [(m.kind, [r.text for r in m.refs]) for m in matches] == [(Kind.PROMOTION, refs)]


def test_cloud_run_from_source_builds() -> None:
    kinds_ = [
        m.kind
        for m in classify_action(
            action_ref("google-github-actions/deploy-cloudrun@v2"), {"source": "."}, CFG
        )
    ]
    assert kinds_ == [Kind.BUILD, Kind.PROMOTION]


def test_ssh_actions_are_read_not_opaque() -> None:
    assert (
        classify_action(
            action_ref("https://github.com/appleboy/ssh-action@v1"), {"script": "ls"}, CFG
        )
        == []
    )
