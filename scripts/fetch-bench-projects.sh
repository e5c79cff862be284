#!/usr/bin/env bash
# Fetches the registry packages that `bench-crossfile` uses besides the Python standard library
# and the crates already in ~/.cargo/registry: pinned versions from the Python package registry
# (source distributions) and from crates.io, each verified by SHA-256, unpacked into
# ${XDG_CACHE_HOME:-~/.cache}/ghostline/bench-projects/<name>-<version>/.
#
#   scripts/fetch-bench-projects.sh      # prints one project folder per line
#
# Idempotent: a folder only ever appears after its archive was verified and unpacked (unpacked
# next to it, then renamed into place), so a present folder is complete and is left alone.
set -euo pipefail

dir="${XDG_CACHE_HOME:-$HOME/.cache}/ghostline/bench-projects"
mkdir -p "$dir"

# name version kind sha256 (kind: pypi = source distribution, crate = crates.io)
packages=(
  "rich 13.9.4 pypi 439594978a49a09530cff7ebc4b5c7103ef57baf48d5ea3184f21d9a2befa098"
  "requests 2.32.3 pypi 55365417734eb18255590a9ff9eb97e9e1da868d4ccd6402399eaf68af20a760"
  "click 8.1.7 pypi ca9853ad459e787e2192211578cc907e7594e294c7ccc834310722b41b9ca6de"
  "toml_edit 0.22.22 crate 4ae48d6208a266e853d946088ed816055e556cc6028c5e8e2b84d9fa5dd7c7f5"
  "similar 2.6.0 crate 1de1d4f81173b03af4c0cbed3c898f6bff5b870e4a7f5d6f4057d62a7a4b686e"
)

for spec in "${packages[@]}"; do
  read -r name version kind sha <<<"$spec"
  dest="$dir/$name-$version"
  if [ -d "$dest" ]; then
    echo "$dest"
    continue
  fi
  work="$(mktemp -d "$dir/.fetch-XXXXXX")"
  case "$kind" in
    pypi)
      python3 -m pip download --quiet --no-deps --no-binary :all: --disable-pip-version-check \
        -d "$work" "$name==$version" >&2
      archive="$(ls "$work"/*.tar.gz)"
      ;;
    crate)
      archive="$work/$name-$version.crate"
      curl -sSfL --retry 3 -o "$archive" "https://static.crates.io/crates/$name/$name-$version.crate"
      ;;
  esac
  got="$(sha256sum "$archive" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ]; then
    echo "fetch-bench-projects: $name $version: SHA-256 $got, expected $sha" >&2
    rm -rf "$work"
    exit 1
  fi
  mkdir "$work/unpacked"
  tar -xzf "$archive" -C "$work/unpacked"
  mv "$work/unpacked/$name-$version" "$dest"
  rm -rf "$work"
  echo "fetch-bench-projects: $name $version unpacked into $dest" >&2
  echo "$dest"
done
