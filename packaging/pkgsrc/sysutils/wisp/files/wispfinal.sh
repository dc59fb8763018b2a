#!@RCD_SCRIPTS_SHELL@
#
# wisp: runcmd, user scripts, host key fingerprints, final report to MAAS (after logins
# and sshd, which makes the host keys that are missing)
#
# PROVIDE: wispfinal
# REQUIRE: LOGIN wispnet sshd

$_rc_subr_loaded . /etc/rc.subr

name="wispfinal"
rcvar="wisp"
start_cmd="wisp_start"
stop_cmd=":"

# The binary: wisp_command from rc.conf, else where a package or an image installed it
# (pkgsrc: /usr/pkg/sbin, a port or an image: /usr/local/sbin, a base-system build: /usr/sbin).
wisp_binary()
{
	if [ -n "${wisp_command:-}" ]; then
		echo "${wisp_command}"
		return 0
	fi
	for _wisp in @PREFIX@/sbin/wisp /usr/pkg/sbin/wisp /usr/local/sbin/wisp /usr/sbin/wisp; do
		if [ -x "${_wisp}" ]; then
			echo "${_wisp}"
			return 0
		fi
	done
	echo /usr/local/sbin/wisp
}

wisp_start()
{
	# /etc/wisp/disabled turns wisp off without uninstalling it.
	if [ -e /etc/wisp/disabled ]; then
		return 0
	fi
	"$(wisp_binary)" init --stage final
}

load_rc_config wisp
run_rc_command "$1"
