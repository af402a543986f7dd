// Package privmta holds what the end-to-end tests (e2e/) and the load
// comparison (bench/) share to run a private Postfix and Dovecot on
// loopback: Postfix's master.cf, the common part of main.cf and of
// dovecot.conf. Test files cannot be imported, so it lives here.
package privmta

import "fmt"

// MasterCF is the private instance's master.cf (fmt: the smtpd port):
// Debian's services without chroot (a private instance has no chroot tree),
// smtpd on a loopback port, and postlog for maillog_file (no syslog here).
const MasterCF = `# private Postfix for imipd's e2e tests
127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// PostfixBase is the part of a private Postfix's main.cf that the e2e
// tests and the load comparison share: the host name host.example.test,
// its configuration in configDir, queue and data under dir, the log in
// maillog (postlog, lines prefixed with prefixes), loopback only, no DNS,
// no aliases, no TLS, no warnings or notices to anyone. Each caller adds
// its transports and milters.
func PostfixBase(host, configDir, dir, maillog, prefixes string) string {
	return fmt.Sprintf(`compatibility_level = 3.6
config_directory = %[2]s
queue_directory = %[3]s/queue
data_directory = %[3]s/data
maillog_file = %[4]s
maillog_file_prefixes = %[5]s
myhostname = %[1]s.example.test
mydomain = example.test
myorigin = example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
alias_maps =
alias_database =
biff = no
smtpd_tls_security_level = none
smtp_tls_security_level = none
delay_warning_time = 0
notify_classes =
shlib_directory = /usr/lib/postfix
`, host, configDir, dir, maillog, prefixes)
}

// DovecotBase is the part of a private Dovecot's dovecot.conf that the
// e2e tests and the load comparison share: its own instance name and
// directories under dir, loopback only, no TLS, passwd-file users keyed by
// the full address (users), mail stored as uid/gid in Maildirs. Each caller
// adds its protocols and services.
func DovecotBase(instance, dir, users string, uid, gid int) string {
	return fmt.Sprintf(`instance_name = %[1]s
base_dir = %[2]s/run
state_dir = %[2]s/state
log_path = %[2]s/dovecot.log
listen = 127.0.0.1
ssl = no
auth_username_format = %%Lu
first_valid_uid = %[4]d
last_valid_uid = %[4]d
first_valid_gid = %[5]d
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = %[3]s
}
userdb {
  driver = passwd-file
  args = %[3]s
}
`, instance, dir, users, uid, gid)
}
