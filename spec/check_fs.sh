#!/bin/sh
# make check-fs: runs the specs that concern the file system (SPECS) with
# their temporary directories (TMPDIR) on each file system this machine can
# mount: loop images (ext4, ext4 data=journal, xfs, btrfs, ntfs-3g with
# permissions), tmpfs, overlayfs, and FUSE (bindfs, sshfs against a local
# sftp-server, fuse-overlayfs). A file system that cannot be made or
# mounted here is skipped with the reason; vfat (fusefat) and exfat
# cannot hold the layout (no symlinks): spec 25 checks their message.
# Each run sets AW_FS to the file system's name (spec 08 reads it).
# Prints one line per file system and ends with "N passed, M failed, K
# skipped" (file systems); exits non-zero when one failed.
# Usage: sh spec/check_fs.sh [fs ...]   (needs root for mounts)
LUA=${LUA:-lua5.4}
SPECS=${SPECS:-"spec/02-write_spec.lua spec/03-update_spec.lua spec/05-recovery_spec.lua spec/08-readers_spec.lua spec/10-read_spec.lua spec/18-history_spec.lua spec/25-filesystems_spec.lua"}
ALL="ext4 ext4-journal xfs btrfs tmpfs overlayfs bindfs sshfs ntfs-3g fuse-overlayfs fusefat exfat-fuse"
[ $# -gt 0 ] && ALL="$*"
WORK=$(mktemp -d /tmp/aw-checkfs.XXXXXX)
chmod 755 "$WORK"   # the specs run children as nobody below it
LOGS=${LOGS:-build/check-fs}
mkdir -p "$LOGS"
passed=0 failed=0 skipped=0
MOUNTED=""

cleanup() {
  for m in $MOUNTED; do
    umount "$m" 2>/dev/null || fusermount -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  MOUNTED=""
}
trap 'cleanup; rm -rf "$WORK"' EXIT

have() { command -v "$1" >/dev/null 2>&1; }

# mnt CMD... : runs a mount command, remembering the mount point ($M).
mnt() {
  if timeout 60 "$@" >"$WORK/mount.log" 2>&1; then
    MOUNTED="$M $MOUNTED"
    return 0
  fi
  return 1
}

image() {   # image SIZE MKFS-COMMAND...: $WORK/<fs>.img made by MKFS
  IMG="$WORK/$fs.img"
  truncate -s "$1" "$IMG" && shift && "$@" "$IMG" >"$WORK/mkfs.log" 2>&1
}

# Makes and mounts file system $fs at $M; prints the reason and returns 1
# when it cannot.
setup() {
  M="$WORK/$fs"
  mkdir -p "$M" "$WORK/src-$fs"
  if [ "$(id -u)" != 0 ]; then echo "needs root to mount"; return 1; fi
  case $fs in
  ext4|ext4-journal)
    have mkfs.ext4 || { echo "mkfs.ext4 is not installed (e2fsprogs)"; return 1; }
    image 256M mkfs.ext4 -q -F || { echo "mkfs.ext4 failed"; return 1; }
    o=loop; [ $fs = ext4-journal ] && o=loop,data=journal
    mnt mount -o $o "$IMG" "$M" || { echo "cannot mount a loop image: $(tail -1 "$WORK/mount.log")"; return 1; } ;;
  xfs)
    have mkfs.xfs || { echo "mkfs.xfs is not installed (xfsprogs)"; return 1; }
    image 512M mkfs.xfs -q -f || { echo "mkfs.xfs failed"; return 1; }
    mnt mount -o loop "$IMG" "$M" || { echo "cannot mount a loop image: $(tail -1 "$WORK/mount.log")"; return 1; } ;;
  btrfs)
    have mkfs.btrfs || { echo "mkfs.btrfs is not installed (btrfs-progs)"; return 1; }
    image 512M mkfs.btrfs -q -f || { echo "mkfs.btrfs failed"; return 1; }
    mnt mount -o loop "$IMG" "$M" || { echo "cannot mount a loop image: $(tail -1 "$WORK/mount.log")"; return 1; } ;;
  tmpfs)
    mnt mount -t tmpfs -o size=256m tmpfs "$M" || { echo "cannot mount tmpfs: $(tail -1 "$WORK/mount.log")"; return 1; } ;;
  overlayfs)
    mkdir -p "$WORK/ov/lower" "$WORK/ov/upper" "$WORK/ov/work"
    mnt mount -t overlay overlay -o "lowerdir=$WORK/ov/lower,upperdir=$WORK/ov/upper,workdir=$WORK/ov/work" "$M" ||
      { echo "cannot mount overlayfs: $(tail -1 "$WORK/mount.log")"; return 1; } ;;
  bindfs)
    have bindfs || { echo "bindfs is not installed"; return 1; }
    mnt bindfs "$WORK/src-$fs" "$M" || { echo "bindfs cannot mount: $(tail -1 "$WORK/mount.log")"; return 1; } ;;
  sshfs)
    have sshfs && [ -x /usr/lib/openssh/sftp-server ] ||
      { echo "sshfs or /usr/lib/openssh/sftp-server is not installed"; return 1; }
    printf '#!/bin/sh\nexec /usr/lib/openssh/sftp-server\n' > "$WORK/sftp"
    chmod +x "$WORK/sftp"
    mnt sshfs -o "allow_other,ssh_command=$WORK/sftp" "localhost:$WORK/src-$fs" "$M" ||
      { echo "sshfs cannot mount: $(tail -1 "$WORK/mount.log")"; return 1; } ;;
  ntfs-3g)
    have mkntfs && have ntfs-3g || { echo "ntfs-3g (mkntfs) is not installed"; return 1; }
    image 256M mkntfs -F -Q -q || { echo "mkntfs failed"; return 1; }
    mnt ntfs-3g -o permissions "$IMG" "$M" || { echo "ntfs-3g cannot mount: $(tail -1 "$WORK/mount.log")"; return 1; } ;;
  fuse-overlayfs)
    have fuse-overlayfs || { echo "fuse-overlayfs is not installed"; return 1; }
    mkdir -p "$WORK/fov/lower" "$WORK/fov/upper" "$WORK/fov/work"
    mnt fuse-overlayfs -o "lowerdir=$WORK/fov/lower,upperdir=$WORK/fov/upper,workdir=$WORK/fov/work" "$M" ||
      { echo "fuse-overlayfs cannot mount: $(tail -1 "$WORK/mount.log")"; return 1; } ;;
  fusefat)
    echo "vfat has no symlinks and no modes: it cannot hold the layout (spec 25 checks the message)"; return 1 ;;
  exfat-fuse)
    echo "exfat has no symlinks: it cannot hold the layout$(have mkfs.exfat || echo '; mkfs.exfat (exfatprogs) is not installed either')"; return 1 ;;
  *) echo "unknown file system"; return 1 ;;
  esac
  chmod 1777 "$M"
  return 0
}

# What a file system cannot do, as measured (docs/filesystems.md): specs
# that fail there for that reason alone, one "title substring|reason" a
# line. A run passes when every failing spec is one of its known ones.
known() {
  case $1 in
  sshfs) cat <<'EOF'
links unchanged files into the new version instead of rewriting them|sshfs has no stable inode numbers: a hard link reads as a copy (st_ino per lookup)
rollback publishes the previous version again as a new version of hard links|sshfs has no stable inode numbers: a hard link reads as a copy
read_tree reads any directory as a payload, skipping links and special files|SFTP cannot make a FIFO (mkfifo: EPERM)
sshfs will not read a planted ..data|an sshfs mount inside the sshfs mount reports EACCES, not EPERM
fails with EPERM naming the file when it may not give a file away|the SFTP server (root here) makes every change: nobody's chown is the server's
read_tree's payload, without owners, is written by a user who does not own the files|the SFTP server (root here) writes for nobody
keeps the version rolled back from and the one rolled back to, past the grace|sshfs cannot set a symlink's times: the spec ages ..data with touch -h
EOF
  ;;
  ntfs-3g) cat <<'EOF'
atomicwriter read escapes names as messages do|NTFS keeps names as UTF-16: a name that is not UTF-8 fails (EILSEQ)
EOF
  ;;
  esac
}

for fs in $ALL; do
  if ! setup >"$WORK/why"; then
    echo "$fs: skipped: $(cat "$WORK/why")"
    skipped=$((skipped + 1))
    cleanup
    continue
  fi
  log="$LOGS/check-fs-$fs.log"
  t0=$(date +%s)
  TMPDIR="$M" AW_FS=$fs LUA=$LUA sh spec/run.sh $SPECS >"$log" 2>&1
  unknown="" knowns=""
  for t in $(grep -n '^not ok' "$log" | cut -d: -f1); do
    title=$(sed -n "${t}p" "$log")
    why=$(known $fs | while IFS='|' read -r pat reason; do
      case $title in *"$pat"*) echo "$reason"; break ;; esac; done)
    if [ -n "$why" ]; then knowns="$knowns
    known: $title
      ($why)"; else unknown="$unknown
    $title"; fi
  done
  if grep -q '^[0-9]* passed, [0-9]* failed' "$log" && [ -z "$unknown" ]; then
    echo "$fs: passed: $(tail -1 "$log") in $(( $(date +%s) - t0 )) s ($(stat -f -c %T "$M"))$knowns"
    passed=$((passed + 1))
  else
    echo "$fs: FAILED: $(tail -1 "$log") (log: $log)$unknown$knowns"
    failed=$((failed + 1))
  fi
  cleanup
done
echo "$passed passed, $failed failed, $skipped skipped (file systems)"
[ "$failed" -eq 0 ]
