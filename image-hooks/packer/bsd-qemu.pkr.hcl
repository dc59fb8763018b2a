# Example: NetBSD or FreeBSD images with wisp, built with the qemu builder. Pick the OS with
# -var os=netbsd (or freebsd); adjust the ISO URL, checksum and boot answers to the release.
packer {
  required_plugins {
    qemu = {
      source  = "github.com/hashicorp/qemu"
      version = ">= 1.1.0"
    }
  }
}

variable "os" {
  type    = string
  default = "netbsd"
}

variable "iso_url" {
  type    = string
  default = "NetBSD-10.1-amd64.iso"
}

variable "iso_checksum" {
  type    = string
  default = "none"
}

source "qemu" "bsd" {
  vm_name          = "${var.os}-wisp.img"
  iso_url          = var.iso_url
  iso_checksum     = var.iso_checksum
  disk_size        = "8G"
  format           = "raw"
  accelerator      = "kvm"
  headless         = true
  boot_wait        = "10s"
  http_directory   = "http"
  ssh_username     = "root"
  ssh_password     = "packer"
  ssh_timeout      = "30m"
  shutdown_command = "shutdown -p now"
}

build {
  sources = ["source.qemu.bsd"]
  provisioner "file" {
    source      = "dist/wisp-0.1.0-x86_64-unknown-${var.os}.tar.xz"
    destination = "/tmp/wisp.tar.xz"
  }
  provisioner "shell" {
    script           = "image-hooks/packer/provision.sh"
    environment_vars = ["WISP_ARCHIVE=/tmp/wisp.tar.xz"]
  }
}
