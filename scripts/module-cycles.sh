#!/usr/bin/env bash
# The module import graph of crates/certgate/src between top-level modules, and its cycles.
# A module is a top-level file `src/<m>.rs` with its folder `src/<m>/`; an import is any
# `crate::<other>` path (or `crate::{a, b}` group) in its code: comment lines, test files
# (tests.rs, *_tests.rs, tests/) and a trailing inline `#[cfg(test)] mod x {` are skipped.
# Prints `<m> -> <deps>` per module, then each cycle (a pair importing each other, or a
# longer circle); exits 1 when there is one. `--list` prints the edges only.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)/crates/certgate/src"
mods=$(cd "$src" && { ls -1 *.rs; ls -1d */; } | sed 's#\.rs$##; s#/$##' | grep -vx 'lib\|main' | sort -u)
declare -A deps
for m in $mods; do
  files=$( { [ -f "$src/$m.rs" ] && echo "$src/$m.rs"; [ -d "$src/$m" ] && find "$src/$m" -name '*.rs'; } |
    grep -v '/tests\.rs$\|_tests\.rs$\|/tests/' || true)
  d=$(for f in $files; do
        # Drop a trailing `#[cfg(test)] mod ...` block (the unit tests at the end of a file).
        awk '/^#\[cfg\(test\)\]/ { t = 1; next } t && /^(pub(\([a-z]+\))? )?mod [a-z_]+ *\{/ { exit } { t = 0 } /^[[:space:]]*\/\// { next } { print }' "$f"
      done | grep -o 'crate::[a-z_][a-z0-9_]*' | sed 's/crate:://' | sort -u | grep -vx "$m" || true)
  # `use crate::{a, b::c}` groups.
  g=$(for f in $files; do
        awk '/^#\[cfg\(test\)\]/ { t = 1; next } t && /^(pub(\([a-z]+\))? )?mod [a-z_]+ *\{/ { exit } { t = 0 } /^[[:space:]]*\/\// { next } { print }' "$f"
      done | tr '\n' ' ' | grep -o 'crate::{[^;]*}' | sed 's/crate::{//; s/}$//' |
      grep -o '\(^\|[{,] *\)[a-z_][a-z0-9_]*' | grep -o '[a-z_][a-z0-9_]*$' | sort -u | grep -vx "$m" || true)
  all=$(printf '%s\n%s\n' "$d" "$g" | grep -x "$(echo $mods | tr ' ' '\n' | paste -sd'|' | sed 's/|/\\|/g')" | sort -u | tr '\n' ' ' || true)
  deps[$m]="${all% }"
done
if [ "${1:-}" = --list ]; then
  for m in $mods; do echo "$m -> ${deps[$m]}"; done
  exit 0
fi
for m in $mods; do echo "$m -> ${deps[$m]}"; done
# Cycles: strongly connected components with more than one module, from each module's
# reachable set (small graph: a plain closure is enough).
declare -A reach
for m in $mods; do
  seen=" "; todo="${deps[$m]}"
  while [ -n "${todo// /}" ]; do
    next=""
    for n in $todo; do
      case "$seen" in *" $n "*) continue ;; esac
      seen="$seen$n "; next="$next ${deps[$n]:-}"
    done
    todo="$next"
  done
  reach[$m]="$seen"
done
found=0; done_=" "
for m in $mods; do
  case "$done_" in *" $m "*) continue ;; esac
  scc="$m"
  for n in $mods; do
    [ "$n" = "$m" ] && continue
    case "${reach[$m]}" in *" $n "*) case "${reach[$n]}" in *" $m "*) scc="$scc $n" ;; esac ;; esac
  done
  if [ "$scc" != "$m" ]; then
    echo "CYCLE: $scc"; found=1
  fi
  for n in $scc; do done_="$done_$n "; done
done
[ "$found" = 0 ] && echo "no cycles"
exit "$found"
