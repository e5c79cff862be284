#!/usr/bin/env bash
# Installs ghostline's build dependencies on Debian/Ubuntu when they are missing:
# cmake (llama.cpp) and libclang (bindgen in llama-cpp-sys-2). Idempotent and quick when
# everything is present. Uses sudo when not root.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
# bindgen needs libclang itself (libclang.so / libclang-NN.so); libclang-cpp does not do.
if ! compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null \
    && ! compgen -G '/usr/lib/llvm-*/lib/libclang-[0-9]*.so*' >/dev/null \
    && ! compgen -G '/usr/lib/*-linux-gnu/libclang.so*' >/dev/null \
    && ! compgen -G '/usr/lib/*-linux-gnu/libclang-[0-9]*.so*' >/dev/null; then
  need+=(libclang-dev)
fi
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)
command -v c++ >/dev/null 2>&1 || need+=(build-essential)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: please install: ${need[*]} (and a Rust toolchain)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "install-deps: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
