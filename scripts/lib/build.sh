# One build serves every script and the tests: the whole workspace, with one set of dependency
# features (crates/workspace-hack unifies them, see ARCHITECTURE.md, "One build"), so a script
# never builds again what another just built. It says what it builds; cargo prints its own
# progress, or one "Finished" line when there is nothing to do.
#   . scripts/lib/build.sh; build_intake [--release]
build_intake() {
  local flags=() profile=debug
  if [ "${1:-}" = --release ]; then flags=(--release); profile=release; fi
  echo "--- cargo build --workspace${flags[*]:+ ${flags[*]}} (target/$profile: the build every script shares)" >&2
  cargo build --workspace "${flags[@]}"
}
