package main

import "syscall"

// fsType names the filesystem holding dir (Linux), or returns "".
func fsType(dir string) string {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return ""
	}
	switch uint64(st.Type) {
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs (in memory: fsync costs nothing)"
	case 0x794C7630:
		return "overlayfs"
	case 0x6969:
		return "nfs (unsupported by the engine)"
	case 0x65735546:
		return "fuse"
	case 0x2FC12FC1:
		return "zfs"
	case 0xF2F52010:
		return "f2fs"
	}
	return ""
}
