//! Continuations, escape directives and escapes.

use super::Case;

#[rustfmt::skip]
pub const CASES: &[Case] = &[
    Case {
        name: "continue-at-eof",
        dockerfile: r#"FROM alpine:3.5

RUN something \"#,
        dump: r#"(from "alpine:3.5")
(run "something")
"#,
    },
    Case {
        name: "continueIndent",  // contains tabs / significant trailing blanks
        dockerfile: r#"FROM ubuntu:14.04

RUN echo hello\
  world\
  goodnight  \
  moon\
  light\
ning
RUN echo hello  \
  world
RUN echo hello  \
world
RUN echo hello \
goodbye\
frog
RUN echo hello  \  
world
RUN echo hi \
 \
 world \
\
 good\
\
night
RUN echo goodbye\
frog
RUN echo good\
bye\
frog

RUN echo hello \
# this is a comment

# this is a comment with a blank line surrounding it

this is some more useful stuff
"#,
        dump: r#"(from "ubuntu:14.04")
(run "echo hello  world  goodnight    moon  lightning")
(run "echo hello    world")
(run "echo hello  world")
(run "echo hello goodbyefrog")
(run "echo hello  world")
(run "echo hi   world  goodnight")
(run "echo goodbyefrog")
(run "echo goodbyefrog")
(run "echo hello this is some more useful stuff")
"#,
    },
    Case {
        name: "env",  // contains tabs / significant trailing blanks
        dockerfile: r#"FROM ubuntu
ENV name value
ENV name=value
ENV name=value name2=value2
ENV name="value value1"
ENV name=value\ value2
ENV name="value'quote space'value2"
ENV name='value"double quote"value2'
ENV name=value\ value2 name2=value2\ value3
ENV name="a\"b"
ENV name="a\'b"
ENV name='a\'b'
ENV name='a\'b''
ENV name='a\"b'
ENV name="''"
# don't put anything after the next line - it must be the last line of the
# Dockerfile and it must end with \
ENV name=value \
    name1=value1 \
    name2="value2a \
           value2b" \
    name3="value3a\n\"value3b\"" \
	name4="value4a\\nvalue4b" \
"#,
        dump: r#"(from "ubuntu")
(env "name" "value" "")
(env "name" "value" "=")
(env "name" "value" "=" "name2" "value2" "=")
(env "name" "\"value value1\"" "=")
(env "name" "value\\ value2" "=")
(env "name" "\"value'quote space'value2\"" "=")
(env "name" "'value\"double quote\"value2'" "=")
(env "name" "value\\ value2" "=" "name2" "value2\\ value3" "=")
(env "name" "\"a\\\"b\"" "=")
(env "name" "\"a\\'b\"" "=")
(env "name" "'a\\'b'" "=")
(env "name" "'a\\'b''" "=")
(env "name" "'a\\\"b'" "=")
(env "name" "\"''\"" "=")
(env "name" "value" "=" "name1" "value1" "=" "name2" "\"value2a            value2b\"" "=" "name3" "\"value3a\\n\\\"value3b\\\"\"" "=" "name4" "\"value4a\\\\nvalue4b\"" "=")
"#,
    },
    Case {
        name: "escape-after-comment",
        dockerfile: r#"# Comment here. Should not be looking for the following parser directive.
# Hence the following line will be ignored, and the subsequent backslash
# continuation will be the default.
# escape = `

FROM image
LABEL maintainer foo@bar.com
ENV GOPATH \
\go"#,
        dump: r#"(from "image")
(label "maintainer" "foo@bar.com" "")
(env "GOPATH" "\\go" "")
"#,
    },
    Case {
        name: "escape-nonewline",
        dockerfile: r#"# escape = `
# There is no white space line after the directives. This still succeeds, but goes
# against best practices.
FROM image
LABEL maintainer foo@bar.com
ENV GOPATH `
\go
"#,
        dump: r#"(from "image")
(label "maintainer" "foo@bar.com" "")
(env "GOPATH" "\\go" "")
"#,
    },
    Case {
        name: "escape-with-syntax",
        dockerfile: r#"# syntax = docker/dockerfile
# escape = `

FROM `
    image
"#,
        dump: r#"(from "image")
"#,
    },
    Case {
        name: "escape",
        dockerfile: r#"#escape = `

FROM image
LABEL maintainer foo@bar.com
ENV GOPATH `
\go"#,
        dump: r#"(from "image")
(label "maintainer" "foo@bar.com" "")
(env "GOPATH" "\\go" "")
"#,
    },
    Case {
        name: "escapes",
        dockerfile: r#"FROM ubuntu:14.04
LABEL maintainer Erik \\Hollensbe <erik@hollensbe.org>\"

RUN apt-get \update && \
  apt-get \"install znc -y
ADD \conf\\" /.znc

RUN foo \

bar \

baz

CMD [ "\/usr\\\"/bin/znc", "-f", "-r" ]
"#,
        dump: r#"(from "ubuntu:14.04")
(label "maintainer" "Erik \\\\Hollensbe <erik@hollensbe.org>\\\"" "")
(run "apt-get \\update &&   apt-get \\\"install znc -y")
(add "\\conf\\\\\"" "/.znc")
(run "foo bar baz")
(cmd "/usr\\\"/bin/znc" "-f" "-r")
"#,
    },
    Case {
        name: "trailing-backslash",
        dockerfile: r#"# https://github.com/docker/for-win/issues/5254

FROM hello-world

ENV A path
ENV B another\\path
ENV C trailing\\backslash\\
ENV D This should not be appended to C
ENV E hello\
\
world
ENV F hello\
 \
world
ENV G hello \
\
world
"#,
        dump: r#"(from "hello-world")
(env "A" "path" "")
(env "B" "another\\\\path" "")
(env "C" "trailing\\\\backslash\\\\" "")
(env "D" "This should not be appended to C" "")
(env "E" "helloworld" "")
(env "F" "hello world" "")
(env "G" "hello world" "")
"#,
    },
];
