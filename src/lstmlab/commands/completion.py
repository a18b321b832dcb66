"""`lstmlab completion bash|zsh|fish`: tab completion for the `lstmlab` command, in your shell.

Hydra's own `-sc install=bash` script is written for an app that is one program: it registers
completion for the program's last name (`train`, for `lstmlab train`) and asks `lstmlab -sc
query=bash`, which is no command. These scripts register `lstmlab` only and ask `lstmlab
completion --query SHELL` (completion_query.py): the subcommands and their flags, and after
`lstmlab train` Hydra's own completion of groups, keys, values and files. `lstmlab train -sc
install=bash` (the line Hydra's help gives, for zsh too) prints the same script.
"""

from __future__ import annotations

import argparse
import os
import shlex

from lstmlab.commands import parsers
from lstmlab.commands.parsers import SHELLS
from lstmlab.errors import LstmlabError

# COMP_WORDBREAKS is passed on so that the query answers with the part of the word bash replaces;
# the user's own COMP_WORDBREAKS is left as it is (Hydra's script removes `=` from it for every
# command). Read line by line: a value such as `glob(*)` is not expanded by the shell.
BASH = r"""_lstmlab_completion() {
    local word
    COMPREPLY=()
    while IFS= read -r word; do
        COMPREPLY+=("$word")
    done < <(COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" COMP_WORDBREAKS="$COMP_WORDBREAKS" \
             command lstmlab completion --query bash 2>/dev/null)
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *[=./[] ]]; then
        compopt -o nospace 2>/dev/null  # `variant=`, `model.` or `model.units=[`: more of the word follows
    fi
}
complete -o default -F _lstmlab_completion lstmlab
"""

ZSH = r"""_lstmlab() {
    local line="${(j: :)${(@)words[1,CURRENT-1]}} ${PREFIX}"
    local -a found
    found=("${(@f)$(COMP_LINE="$line" COMP_POINT=${#line} command lstmlab completion --query zsh 2>/dev/null)}")
    found=(${found:#})
    if (( ${#found} == 0 )); then
        _files
        return
    fi
    local -a open=(${(M)found:#*[=./[]}) whole=(${found:#*[=./[]})
    (( ${#open} )) && compadd -S '' -- "${open[@]}"  # `variant=`, `model.`, `model.units=[`: more follows
    (( ${#whole} )) && compadd -- "${whole[@]}"
}
(( ${+functions[compdef]} )) || { autoload -Uz compinit && compinit }
compdef _lstmlab lstmlab
"""

FISH = r"""function __lstmlab_complete
    set -lx COMP_LINE (commandline -cp)
    set -lx COMP_POINT (string length -- "$COMP_LINE")
    set -l found (command lstmlab completion --query fish 2>/dev/null)
    if test (count $found) -gt 0
        printf '%s\n' $found
    else
        __fish_complete_path (commandline -ct)
    end
end
complete -c lstmlab -f -a '(__lstmlab_complete)'
"""

UNINSTALL = {
    "bash": "complete -r lstmlab 2>/dev/null; unset -f _lstmlab_completion\n",
    "zsh": "compdef -d lstmlab; unfunction _lstmlab 2>/dev/null\n",
    "fish": "complete -e -c lstmlab; functions -e __lstmlab_complete\n",
}


def script(shell: str) -> str:
    """The script that `eval`/`source` installs for `lstmlab` in `shell`."""
    if shell == "bash":
        # Hydra's help gives zsh users the bash line: in zsh this installs the zsh script.
        return f'if [ -n "${{ZSH_VERSION:-}}" ]; then\neval {shlex.quote(ZSH)}\nelse\n{BASH}fi\n'
    return {"zsh": ZSH, "fish": FISH}[shell]


def main(options: argparse.Namespace) -> int:
    if options.query:
        return query(options.shell)
    print(UNINSTALL[options.shell] if options.uninstall else script(options.shell), end="")
    return 0


def query(shell: str) -> int:
    """Print the candidates for the command line in $COMP_LINE, one per line."""
    # Hydra (for train's overrides) is imported by the query only: the script, printed at every
    # shell's start-up, needs none of it.
    from lstmlab.commands.completion_query import candidates, for_shell

    line = os.environ.get("COMP_LINE", "")
    point = os.environ.get("COMP_POINT", "")
    if point.isdigit():
        line = line[: int(point)]  # the words before the cursor (a point past the end: the end)
    found = for_shell(candidates(line), line, shell, os.environ.get("COMP_WORDBREAKS"))
    if found:  # nothing at all when there is nothing: the shells then complete file names
        print("\n".join(found))
    return 0


def hydra_style(overrides: list[str]) -> int:
    """`lstmlab train -sc install=SHELL` (or `uninstall=`, `query=`), as Hydra's help says it."""
    requests = {key: value for key, _, value in (override.partition("=") for override in overrides)}
    actions = [a for a in ("install", "uninstall", "query") if a in requests]
    if len(actions) != 1 or requests[actions[0]] not in SHELLS:
        raise LstmlabError("shell completion: give one of install=SHELL, uninstall=SHELL or query=SHELL, "
                           f"SHELL one of {', '.join(SHELLS)}, e.g. eval \"$(lstmlab completion bash)\"")
    action, shell = actions[0], requests[actions[0]]
    flags = {"install": [], "uninstall": ["--uninstall"], "query": ["--query"]}[action]
    return main(parsers.completion().parse_args([shell, *flags]))
