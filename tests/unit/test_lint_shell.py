"""Shell splitting: continuations, separators, substitutions, quotes, heredocs."""

from __future__ import annotations

from digestgate.linting.shell import commands, logical_lines


def argvs(text: str) -> list[tuple[str, ...]]:
    return [c.argv for c in commands(text)]


def test_continuations_keep_the_first_line() -> None:
    cmds = commands("echo a\nsudo docker \\\n  build \\\n  -t x .\n")
    assert cmds[1].argv == ("sudo", "docker", "build", "-t", "x", ".")
    assert cmds[1].line == 1


def test_separators_split_commands() -> None:
    assert argvs("a && b || c; d | e & f") == [("a",), ("b",), ("c",), ("d",), ("e",), ("f",)]


def test_substitutions_become_commands() -> None:
    cmds = commands('D="$(docker build -q .)"; X=`podman build .`')
    assert ("docker", "build", "-q", ".") in [c.argv for c in cmds]
    assert ("podman", "build", ".") in [c.argv for c in cmds]
    assert cmds[0].assigns == (("D", "$(...)"),)


def test_quoted_words_and_comments() -> None:
    assert argvs('echo "docker build ."  # docker build') == [("echo", "docker build .")]
    assert argvs("# docker build .") == []


def test_heredoc_bodies_are_skipped() -> None:
    text = "cat <<EOF\ndocker build .\nEOF\necho done"
    assert argvs(text) == [("cat",), ("echo", "done")]
    assert [line for line, _ in logical_lines(text)] == [0, 3]


def test_bash_c_body_is_parsed() -> None:
    assert ("buildah", "bud", ".") in argvs("timeout 60 bash -c 'buildah bud .'")


def test_expressions_stay_one_word() -> None:
    assert argvs("crane copy app@${{ steps.b.outputs.digest }} x") == [
        ("crane", "copy", "app@${{ steps.b.outputs.digest }}", "x")
    ]


def test_assignments_and_export() -> None:
    cmds = commands("export IMAGE_DIGEST=app:1 OTHER=2\nFOO=bar make test")
    assert cmds[0].assigns == (("IMAGE_DIGEST", "app:1"), ("OTHER", "2"))
    assert cmds[1].argv == ("make", "test") and cmds[1].assigns == (("FOO", "bar"),)


def test_unbalanced_quotes_do_not_raise() -> None:
    assert argvs('docker build "unterminated') == [("docker", "build", '"unterminated')]


def test_redirections_add_no_words() -> None:
    assert argvs('docker push "$IMG" 2>&1 | tee x') == [("docker", "push", "$IMG"), ("tee", "x")]
    assert argvs("bash 2>&1 ci/x.sh") == [("bash", "ci/x.sh")]
    assert argvs("crane copy a b >/dev/null 2>&1") == [("crane", "copy", "a", "b")]
    assert argvs("x 1>&2 && y &>/dev/null") == [("x",), ("y",)]


def test_descriptor_digits_are_only_dropped_before_a_redirection() -> None:
    assert argvs("sleep 2 >/dev/null") == [("sleep", "2")]
    assert argvs('echo "a 2>b" v2>x') == [("echo", "a 2>b", "v2")]


def test_ssh_remote_command_runs_remotely() -> None:
    cmds = commands('ssh -i k -o X=y deploy@h "cd /srv && docker compose up -d"')
    assert [(c.argv, c.remote) for c in cmds] == [
        (("ssh", "-i", "k", "-o", "X=y", "deploy@h", "cd /srv && docker compose up -d"), False),
        (("cd", "/srv"), True),
        (("docker", "compose", "up", "-d"), True),
    ]


def test_ssh_heredoc_is_a_remote_script_with_its_own_lines() -> None:
    text = "ssh h << 'EOF'\n  cd /x\n  docker compose up -d\nEOF\necho ok"
    assert [(c.argv, c.line, c.remote) for c in commands(text)] == [
        (("ssh", "h"), 0, False),
        (("cd", "/x"), 1, True),
        (("docker", "compose", "up", "-d"), 2, True),
        (("echo", "ok"), 4, False),
    ]


def test_quoted_heredoc_delimiters_and_data_heredocs() -> None:
    text = "cat > f <<'EOF'\ndocker build .\nEOF\nbash -s <<-EOS\n\tdocker build .\n\tEOS"
    assert [(c.argv, c.line) for c in commands(text)] == [
        (("cat",), 0),
        (("bash", "-s"), 3),
        (("docker", "build", "."), 4),
    ]
    assert [line for line, _ in logical_lines(text)] == [0, 3]


def test_sshpass_and_bash_c_inside_the_remote_command() -> None:
    cmds = commands('sshpass -p "$P" ssh u@h "bash -c \'docker pull x && docker run -d x\'"')
    assert [c.argv for c in cmds if c.remote][-2:] == [
        ("docker", "pull", "x"),
        ("docker", "run", "-d", "x"),
    ]


def test_function_bodies_run_only_when_called() -> None:
    from digestgate.linting.shell import parse

    text = (
        'build() {\n  docker build -t "$1" .\n}\n'
        'function retag {\n  docker tag "$1" "$2"\n}\n'
        'notify() { curl -d "x=${1}" "$HOOK"; }\n'
        "retag a:rc a:1\nnotify a:1"
    )
    parsed = parse(text)
    assert [(c.argv, c.line) for c in parsed.commands] == [
        (("retag", "a:rc", "a:1"), 7),
        (("docker", "tag", "a:rc", "a:1"), 4),
        (("notify", "a:1"), 8),
        (("curl", "-d", "x=a:1", "$HOOK"), 6),
    ]
    assert sorted(parsed.functions) == ["build", "notify", "retag"]
    assert [c.argv for c in parsed.functions["build"]] == [("docker", "build", "-t", "$1", ".")]


def test_recursive_functions_stop() -> None:
    assert argvs("f() {\n  f\n  docker build .\n}\nf") == [
        ("f",),
        ("f",),
        ("docker", "build", "."),
    ]


def test_all_arguments_expand_to_the_call_words() -> None:
    assert argvs('copy() { crane copy "$@"; }\ncopy a@sha256:x b:1') == [
        ("copy", "a@sha256:x", "b:1"),
        ("crane", "copy", "a@sha256:x", "b:1"),
    ]
