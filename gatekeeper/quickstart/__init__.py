"""The local demo site: Gerrit emulator + sshd nodes + every service."""
