# Example: an OpenBSD image with wisp, built with the vmm builder on an OpenBSD host
# (plugin: github.com/double-p/vmm). Adjust the ISO, the boot answers and the disk size.
packer {
  required_plugins {
    vmm = {
      source  = "github.com/double-p/vmm"
      version = ">= 0.3.0"
    }
  }
}

# cross/build's archive for the image's OpenBSD release: gzipped (the base system has no xz).
variable "wisp_archive" {
  type    = string
  default = "dist/wisp-0.1.0-x86_64-unknown-openbsd-7.8.tgz"
}

source "vmm" "openbsd" {
  vm_name      = "openbsd-wisp"
  disk_size    = "8G"
  disk_format  = "raw"
  memory       = "1G"
  boot_wait    = "5s"
  iso_image    = "install78.iso"
  boot_command = ["S<enter><wait>", "dhclient vio0<enter><wait5>", "ftp -o install.conf http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>", "install -af install.conf && reboot<enter>"]
  http_directory = "http"
  ssh_username = "root"
  ssh_password = "packer"
  ssh_timeout  = "20m"
}

build {
  sources = ["source.vmm.openbsd"]
  provisioner "file" {
    source      = var.wisp_archive
    destination = "/tmp/wisp.tgz"
  }
  provisioner "shell" {
    script           = "image-hooks/packer/provision.sh"
    environment_vars = ["WISP_ARCHIVE=/tmp/wisp.tgz"]
  }
}
