"""Shell completion for ``imrec``: a bash (or zsh) script generated from the CLI's own parser, commands that
plugins add included, so it never falls out of date and needs no extra package.

    eval "$(imrec completion bash)"      # in ~/.bashrc
    eval "$(imrec completion zsh)"       # in ~/.zshrc

It completes commands, sub-commands (``bench run``, ``data get``) and options; anything else completes as a file
name (recipes, run directories).
"""

from __future__ import annotations

import argparse
import re

SHELLS = ("bash", "zsh")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public way to list sub-commands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--") or len(o) == 2]


def _words(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], list[str]]:
    """Command path → the words that may follow it (sub-commands first, then options)."""
    subs = _subparsers(parser)
    out = {path: [*subs, *_options(parser)]}
    for name, sub in subs.items():
        out.update(_words(sub, (*path, name)))
    return out


def _safe(word: str) -> str:
    return word if re.fullmatch(r"[\w.:+=/-]+", word) else "'" + word.replace("'", "'\\''") + "'"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` (bash or zsh) of ``parser`` (imrec.cli.build_parser())."""
    if shell not in SHELLS:
        from .errors import ImrecError

        raise ImrecError(f"no completion for shell {shell!r}; choose one of {', '.join(SHELLS)}")
    table = _words(parser)
    cases = "\n".join(f'        "{" ".join(path)}") words="{" ".join(_safe(w) for w in words)}" ;;'
                      for path, words in sorted(table.items(), key=lambda kv: -len(kv[0])))
    body = f'''_imrec_complete() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" path="" w i
    # The command path so far: the words before the cursor that are (sub-)commands, not options or files.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        case "$w" in -*) continue ;; esac
        case " $(_imrec_words "${{path# }}") " in *" $w "*) path="$path $w" ;; esac
    done
    local words
    words="$(_imrec_words "${{path# }}")"
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$(printf '%s\\n' $words | grep -v '^-')" -- "$cur") $(compgen -f -- "$cur"))
    fi
}}
_imrec_words() {{
    local words=""
    case "$1" in
{cases}
    esac
    echo "$words"
}}
complete -o filenames -F _imrec_complete imrec
'''
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + body
    return body
