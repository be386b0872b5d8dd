//! JSON (exec) form, flags and HEALTHCHECK.

use super::Case;

#[rustfmt::skip]
pub const CASES: &[Case] = &[
    Case {
        name: "ADD-COPY-with-JSON",  // contains tabs / significant trailing blanks
        dockerfile: r#"FROM	ubuntu:14.04
LABEL	maintainer	Seongyeol Lim <seongyeol37@gmail.com>

COPY	.	/go/src/github.com/docker/docker
ADD		.	/
ADD		null /
COPY	nullfile /tmp
ADD		[ "vimrc", "/tmp" ]
COPY	[ "bashrc", "/tmp" ]
COPY	[ "test file", "/tmp" ]
ADD		[ "test file", "/tmp/test file" ]
"#,
        dump: r#"(from "ubuntu:14.04")
(label "maintainer" "Seongyeol Lim <seongyeol37@gmail.com>" "")
(copy "." "/go/src/github.com/docker/docker")
(add "." "/")
(add "null" "/")
(copy "nullfile" "/tmp")
(add "vimrc" "/tmp")
(copy "bashrc" "/tmp")
(copy "test file" "/tmp")
(add "test file" "/tmp/test file")
"#,
    },
    Case {
        name: "flags",
        dockerfile: r#"FROM scratch
COPY foo /tmp/
COPY --user=me foo /tmp/
COPY --doit=true foo /tmp/
COPY --user=me --doit=true foo /tmp/
COPY --doit=true -- foo /tmp/
COPY -- foo /tmp/
CMD --doit [ "a", "b" ]
CMD --doit=true -- [ "a", "b" ]
CMD --doit -- [ ]
"#,
        dump: r#"(from "scratch")
(copy "foo" "/tmp/")
(copy ["--user=me"] "foo" "/tmp/")
(copy ["--doit=true"] "foo" "/tmp/")
(copy ["--user=me" "--doit=true"] "foo" "/tmp/")
(copy ["--doit=true"] "foo" "/tmp/")
(copy "foo" "/tmp/")
(cmd ["--doit"] "a" "b")
(cmd ["--doit=true"] "a" "b")
(cmd ["--doit"])
"#,
    },
    Case {
        name: "health",
        dockerfile: r#"FROM debian
ADD check.sh main.sh /app/
CMD /app/main.sh
HEALTHCHECK
HEALTHCHECK --interval=5s --timeout=3s --retries=3 \
  CMD /app/check.sh --quiet
HEALTHCHECK CMD
HEALTHCHECK   CMD   a b
HEALTHCHECK --timeout=3s CMD ["foo"]
HEALTHCHECK CONNECT TCP 7000
HEALTHCHECK --start-period=0s --start-interval=0s --interval=5s --timeout=0s --retries=0 CMD ["foo"]
"#,
        dump: r#"(from "debian")
(add "check.sh" "main.sh" "/app/")
(cmd "/app/main.sh")
(healthcheck)
(healthcheck ["--interval=5s" "--timeout=3s" "--retries=3"] "CMD" "/app/check.sh --quiet")
(healthcheck "CMD")
(healthcheck "CMD" "a b")
(healthcheck ["--timeout=3s"] "CMD" "foo")
(healthcheck "CONNECT" "TCP 7000")
(healthcheck ["--start-period=0s" "--start-interval=0s" "--interval=5s" "--timeout=0s" "--retries=0"] "CMD" "foo")
"#,
    },
    Case {
        name: "jeztah-invalid-json-json-inside-string-double",
        dockerfile: r#"CMD "[\"echo\", \"Phew, I just managed to escaped those double quotes\"]"
"#,
        dump: r#"(cmd "\"[\\\"echo\\\", \\\"Phew, I just managed to escaped those double quotes\\\"]\"")
"#,
    },
    Case {
        name: "jeztah-invalid-json-json-inside-string",
        dockerfile: r#"CMD '["echo", "Well, JSON in a string is JSON too?"]'
"#,
        dump: r#"(cmd "'[\"echo\", \"Well, JSON in a string is JSON too?\"]'")
"#,
    },
    Case {
        name: "jeztah-invalid-json-single-quotes",
        dockerfile: r#"CMD ['echo','single quotes are invalid JSON']
"#,
        dump: r#"(cmd "['echo','single quotes are invalid JSON']")
"#,
    },
    Case {
        name: "jeztah-invalid-json-unterminated-bracket",
        dockerfile: r#"CMD ["echo", "Please, close the brackets when you're done"
"#,
        dump: r#"(cmd "[\"echo\", \"Please, close the brackets when you're done\"")
"#,
    },
    Case {
        name: "jeztah-invalid-json-unterminated-string",
        dockerfile: r#"CMD ["echo", "look ma, no quote!]
"#,
        dump: r#"(cmd "[\"echo\", \"look ma, no quote!]")
"#,
    },
    Case {
        name: "json",  // contains tabs / significant trailing blanks
        dockerfile: r#"CMD []
CMD [""]
CMD ["a"]
CMD ["a","b"]
CMD [ "a", "b" ]
CMD [	"a",	"b"	]
CMD	[	"a",	"b"	]	
CMD ["abc 123", "♥", "☃", "\" \\ \/ \b \f \n \r \t \u0000"]
"#,
        dump: r#"(cmd)
(cmd "")
(cmd "a")
(cmd "a" "b")
(cmd "a" "b")
(cmd "a" "b")
(cmd "a" "b")
(cmd "abc 123" "♥" "☃" "\" \\ / \b \f \n \r \t \x00")
"#,
    },
    Case {
        name: "kartar-entrypoint-oddities",
        dockerfile: r#"FROM ubuntu:14.04
LABEL maintainer James Turnbull "james@example.com"
ENV REFRESHED_AT 2014-06-01
RUN apt-get update
RUN apt-get --no-install-recommends install -y redis-server redis-tools
EXPOSE 6379
ENTRYPOINT [ "/usr/bin/redis-server" ]
"#,
        dump: r#"(from "ubuntu:14.04")
(label "maintainer" "James Turnbull \"james@example.com\"" "")
(env "REFRESHED_AT" "2014-06-01" "")
(run "apt-get update")
(run "apt-get --no-install-recommends install -y redis-server redis-tools")
(expose "6379")
(entrypoint "/usr/bin/redis-server")
"#,
    },
    Case {
        name: "multiple-volumes",
        dockerfile: r#"FROM foo

VOLUME /opt/nagios/var /opt/nagios/etc /opt/nagios/libexec /var/log/apache2 /usr/share/snmp/mibs
"#,
        dump: r#"(from "foo")
(volume "/opt/nagios/var" "/opt/nagios/etc" "/opt/nagios/libexec" "/var/log/apache2" "/usr/share/snmp/mibs")
"#,
    },
];
