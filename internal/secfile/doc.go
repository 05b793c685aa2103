// Package secfile is where every Shomei binary reads a secret from a file
// (an HSM PIN, a TLS private key, a client token) and checks the files it
// must keep private (the store): a file whose permission bits let its group
// or others in is refused with its path named, before anything is read
// (issue 9 item 12). So is a file in a directory group or others may write
// (they could replace it), looked at both where the path names it and,
// through a symbolic link, where the file is. The fix is always the same:
// chmod 600, owned by the service user, in a directory only it writes.
package secfile
