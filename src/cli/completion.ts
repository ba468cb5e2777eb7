/** `portico completion bash|zsh`: a completion script generated from the command tree. */
import type { Command } from 'commander';

function words(cmd: Command): string[] {
  const subs = cmd.commands.map((c) => c.name());
  const opts = cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => !!x));
  return [...subs, ...opts, '--help'];
}

function paths(cmd: Command, prefix: string[] = []): Array<[string, string[]]> {
  return [[prefix.join(' '), words(cmd)], ...cmd.commands.flatMap((c) => paths(c, [...prefix, c.name()]))];
}

export function completionScript(shell: 'bash' | 'zsh', program: Command): string {
  const cases = paths(program)
    .map(([p, w]) => `    "${p}") echo "${w.join(' ')}" ;;`)
    .join('\n');
  const bash = `# portico completion (bash). Load it with: source <(portico completion bash)
_portico_words() {
  case "$1" in
${cases}
  esac
}
_portico() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" i w next
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    next="\${path:+$path }$w"
    if [[ -n "$(_portico_words "$next")" ]]; then path="$next"; fi
  done
  COMPREPLY=($(compgen -W "$(_portico_words "$path")" -- "$cur"))
}
complete -o default -F _portico portico`;
  if (shell === 'bash') return bash;
  return `#compdef portico
# portico completion (zsh, through bash completion). Load it with: source <(portico completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash}`;
}
