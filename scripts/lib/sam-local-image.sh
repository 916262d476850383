# shellcheck shell=bash
# The machine side of scripts/sam-local: Docker, arm64 emulation and a stand-in for the Lambda
# base image `public.ecr.aws/lambda/provided:al2023-arm64`, for machines that cannot pull it.
# Every function is idempotent: what is already there is left alone.
#
#   samlocal_tools     apt-get installs what is missing (docker.io, qemu-user-static,
#                      binfmt-support, debootstrap)
#   samlocal_binfmt    runs aarch64 binaries through qemu (binfmt_misc, flag F)
#   samlocal_dockerd   a Docker daemon: the running one, or dockerd started in the background
#                      (--userland-proxy=false; log: $SAM_LOCAL_CACHE/dockerd.log)
#   samlocal_image     the base image: kept if present (the real one or the stand-in), else
#                      built from a Debian arm64 root file system (debootstrap, cached as
#                      $SAM_LOCAL_CACHE/rootfs-bookworm-arm64.tar.gz)
#
# The stand-in is Debian 12 (bookworm, minbase + ca-certificates) for arm64 with the Lambda base
# image's environment, working directory and directories (/var/task, /var/runtime, /var/lang,
# /opt); it carries the label intake.stand-in. Remove it with `docker rmi "$SAM_LOCAL_BASE_IMAGE"`;
# remove the cached root file system to build that again.

SAM_LOCAL_BASE_IMAGE=${SAM_LOCAL_BASE_IMAGE:-public.ecr.aws/lambda/provided:al2023-arm64}
SAM_LOCAL_CACHE=${SAM_LOCAL_CACHE:-$PWD/.local/sam-local}
SAM_LOCAL_SUITE=bookworm

samlocal_log() { printf '%s\n' "$*" >&2; }

# The host's own architecture, in Debian's spelling (amd64, arm64).
samlocal_host_arch() { dpkg --print-architecture 2>/dev/null || uname -m; }

samlocal_tools() {
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  if [ "$(samlocal_host_arch)" != arm64 ]; then
    [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
    command -v update-binfmts >/dev/null || need+=(binfmt-support)
  fi
  command -v debootstrap >/dev/null || need+=(debootstrap)
  [ ${#need[@]} -eq 0 ] && { samlocal_log "tools: present"; return 0; }
  samlocal_log "tools: apt-get install ${need[*]}"
  local log="$SAM_LOCAL_CACHE/apt.log"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q "${need[@]}" >"$log" 2>&1; then
    # A fresh machine may have no package lists yet.
    apt-get update -q >>"$log" 2>&1 || true
    apt-get install -y -q "${need[@]}" >>"$log" 2>&1 || { tail -n 20 "$log" >&2; return 1; }
  fi
}

samlocal_binfmt() {
  [ "$(samlocal_host_arch)" = arm64 ] && { samlocal_log "binfmt: not needed on an arm64 host"; return 0; }
  local dir=/proc/sys/fs/binfmt_misc
  if [ ! -e "$dir/status" ]; then
    mount -t binfmt_misc binfmt_misc "$dir" || { samlocal_log "binfmt: cannot mount binfmt_misc (a container without privileges?)"; return 1; }
  fi
  if ! grep -qx enabled "$dir/qemu-aarch64" 2>/dev/null; then
    update-binfmts --enable qemu-aarch64 >&2
  fi
  # Flag F: the kernel opens the interpreter now, so it works inside containers and chroots that
  # do not have it.
  if ! grep -qx enabled "$dir/qemu-aarch64" 2>/dev/null || ! grep -q '^flags: .*F' "$dir/qemu-aarch64"; then
    samlocal_log "binfmt: qemu-aarch64 is not registered with flag F:"; cat "$dir/qemu-aarch64" >&2 2>/dev/null
    return 1
  fi
  samlocal_log "binfmt: qemu-aarch64 enabled ($(sed -n 's/^flags: //p' "$dir/qemu-aarch64"))"
}

samlocal_dockerd() {
  if docker info >/dev/null 2>&1; then
    samlocal_log "docker: daemon running ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
    local pid
    pid=$(pgrep -xo dockerd || true)
    if [ -n "$pid" ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- '--userland-proxy=false' \
      && ! grep -qs '"userland-proxy": *false' /etc/docker/daemon.json; then
      samlocal_log "docker: warning: dockerd runs without --userland-proxy=false; sam local invoke may say 'No response from invoke container'"
    fi
    return 0
  fi
  local log="$SAM_LOCAL_CACHE/dockerd.log"
  samlocal_log "docker: starting dockerd --userland-proxy=false (log: $log)"
  # Its own session: it outlives this script and is not stopped with it.
  setsid dockerd --userland-proxy=false >"$log" 2>&1 </dev/null &
  local i
  for i in $(seq 1 120); do
    docker info >/dev/null 2>&1 && { samlocal_log "docker: ready after $((i / 2)) s"; return 0; }
    sleep 0.5
  done
  samlocal_log "docker: dockerd did not answer within 60 s; its log:"; tail -n 30 "$log" >&2
  return 1
}

# The Debian mirror apt uses here (deb822 or one-line sources), else deb.debian.org.
samlocal_mirror() {
  local uri
  uri=$({
    grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1}'
  } | grep -E '/debian/?$' | head -n 1)
  echo "${SAM_LOCAL_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

# Builds the cached root file system tarball (arm64 Debian, minbase + ca-certificates).
samlocal_rootfs() {
  local tarball=$1 root="$SAM_LOCAL_CACHE/rootfs.building" mirror log="$SAM_LOCAL_CACHE/debootstrap.log"
  mirror=$(samlocal_mirror)
  rm -rf "$root"
  samlocal_log "rootfs: debootstrap --arch=arm64 --variant=minbase $SAM_LOCAL_SUITE from $mirror (log: $log)"
  # On a foreign host debootstrap runs the second stage itself, through binfmt (qemu, flag F).
  if ! debootstrap --arch=arm64 --variant=minbase --include=ca-certificates \
    "$SAM_LOCAL_SUITE" "$root" "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 20 "$root/debootstrap/debootstrap.log" >&2
    return 1
  fi
  # What a container image does without: package caches and lists, documentation, logs.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/debootstrap
  # The Lambda base image's directories (SAM mounts the code at /var/task, adds the layer at /opt).
  # (Checked one by one: this runs where `set -e` does not apply.)
  mkdir -p "$root"/var/task "$root"/var/runtime "$root"/var/lang/bin "$root"/var/lang/lib "$root"/opt || return 1
  tar --numeric-owner -C "$root" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . \
    | gzip -1 >"$tarball.tmp" || { rm -f "$tarball.tmp"; return 1; }
  mv "$tarball.tmp" "$tarball" || return 1
  rm -rf "$root"
  samlocal_log "rootfs: $(du -h "$tarball" | cut -f1) cached in $tarball"
}

samlocal_image() {
  local image=$SAM_LOCAL_BASE_IMAGE arch
  arch=$(docker image inspect -f '{{.Architecture}}' "$image" 2>/dev/null || true)
  if [ "$arch" = arm64 ]; then
    if [ -n "$(docker image inspect -f '{{index .Config.Labels "intake.stand-in"}}' "$image" 2>/dev/null)" ]; then
      samlocal_log "image: $image present (the stand-in)"
    else
      samlocal_log "image: $image present"
    fi
    return 0
  fi
  [ -n "$arch" ] && samlocal_log "image: $image is $arch, not arm64: building the stand-in over it"
  local tarball="$SAM_LOCAL_CACHE/rootfs-$SAM_LOCAL_SUITE-arm64.tar.gz"
  if [ ! -s "$tarball" ]; then samlocal_rootfs "$tarball" || return 1; fi
  local ctx="$SAM_LOCAL_CACHE/image-context"
  rm -rf "$ctx" && mkdir -p "$ctx"
  ln "$tarball" "$ctx/rootfs.tar.gz" 2>/dev/null || cp "$tarball" "$ctx/rootfs.tar.gz"
  # The environment, directories and working directory of aws-lambda-base-images'
  # Dockerfile.provided.al2023. `docker import --platform linux/arm64` is ignored by dockerd
  # 20.10 (the image says amd64, and SAM's build for linux/arm64 then refuses it); a build from
  # scratch for the platform is labelled arm64 by every daemon.
  cat >"$ctx/Dockerfile" <<EOF
FROM scratch
ADD rootfs.tar.gz /
ENV LANG=en_US.UTF-8
ENV TZ=:/etc/localtime
ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin
ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib
ENV LAMBDA_TASK_ROOT=/var/task
ENV LAMBDA_RUNTIME_DIR=/var/runtime
WORKDIR /var/task
LABEL intake.stand-in="debian-$SAM_LOCAL_SUITE-minbase; built by scripts/sam-local, not the AWS image"
EOF
  samlocal_log "image: building the stand-in $image"
  DOCKER_BUILDKIT=0 docker build --platform linux/arm64 -t "$image" "$ctx" >"$SAM_LOCAL_CACHE/image-build.log" 2>&1 \
    || { tail -n 20 "$SAM_LOCAL_CACHE/image-build.log" >&2; return 1; }
  rm -rf "$ctx"
  arch=$(docker image inspect -f '{{.Architecture}}' "$image")
  [ "$arch" = arm64 ] || { samlocal_log "image: built as $arch, not arm64"; return 1; }
  # It runs: aarch64 through qemu, glibc and the CA bundle in place.
  local probe
  probe=$(docker run --rm --platform linux/arm64 --entrypoint /bin/sh "$image" -c \
    'echo "$(uname -m) glibc-$(getconf GNU_LIBC_VERSION | cut -d" " -f2) $(ls /etc/ssl/certs | wc -l)-certs"')
  samlocal_log "image: $image built ($arch): $probe"
}
