//! Field splitting for `Lexer::process_words` (upstream `wordsStruct`).

/// Accumulates whitespace-separated fields (upstream `wordsStruct`).
#[derive(Default)]
pub(super) struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    pub(super) fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    pub(super) fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    pub(super) fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    pub(super) fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    pub(super) fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}
