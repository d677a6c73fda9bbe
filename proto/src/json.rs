//! A strict reader for the small JSON objects the guest reads from the host (a WIT's claims
//! set), over a private copy of the text.
//!
//! The whole text is checked against the RFC 8259 grammar (UTF-8, §2–§7) before any member is
//! read; a member's value is handed out as its text. Stricter than the RFC where a token's
//! reader must be: a member name written with escapes and a name given twice in one object are
//! refused (RFC 7519 §4 lets a JWT parser refuse duplicates; a name read raw could otherwise
//! hide a second `sub`), nesting is at most [`MAX_DEPTH`], an object has at most [`MAX_MEMBERS`], and a string wanted as a value is
//! returned only when it holds no escape (no SPIFFE ID, curve name or base64url value needs one).
//!
//! Why not a crate: serde-json-core, which the runtime used, cost 7.5 KB of the ROM with the
//! `core` string-slicing panics it pulls in (issue 17); this reader reads only what the guest
//! reads. Tests check it against serde_json on valid and mutated texts.

/// The deepest nesting of objects and arrays accepted.
pub const MAX_DEPTH: usize = 16;

/// The most members an object may have (the repeated-name check is quadratic in them).
pub const MAX_MEMBERS: usize = 64;

/// The text is not JSON, or not JSON this reader accepts (see the module's rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonError;

/// One JSON object, already checked; its members are read by name.
#[derive(Clone, Copy, Debug)]
pub struct Object<'a> {
    /// From `{` to `}`.
    text: &'a [u8],
}

impl<'a> Object<'a> {
    /// Checks `text` (one JSON object, whitespace around it allowed) and keeps it.
    ///
    /// # Errors
    /// [`JsonError`] for anything else, by the module's rules.
    pub fn parse(text: &'a [u8]) -> Result<Self, JsonError> {
        core::str::from_utf8(text).map_err(|_| JsonError)?;
        let mut cursor = Cursor { text, at: 0 };
        cursor.whitespace();
        let start = cursor.at;
        if cursor.peek() != Some(b'{') {
            return Err(JsonError);
        }
        cursor.value(0)?;
        let object = Self { text: &text[start..cursor.at] };
        cursor.whitespace();
        if cursor.at != text.len() {
            return Err(JsonError);
        }
        Ok(object)
    }

    /// The text of member `name`'s value, if the object has that member (once: [`Object::parse`]
    /// refused repeated names).
    ///
    /// # Errors
    /// None for a checked object; [`JsonError`] is the reader's own.
    pub fn member(&self, name: &str) -> Result<Option<&'a [u8]>, JsonError> {
        let mut members = self.members();
        while let Some((key, value)) = members.next_member()? {
            if key == name.as_bytes() {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    fn members(&self) -> Members<'a> {
        Members { cursor: Cursor { text: self.text, at: 1 } }
    }

    /// Member `name`'s value if it is a string without escapes; `None` if there is no such
    /// member.
    ///
    /// # Errors
    /// [`JsonError`] for a value of another type or with an escape.
    pub fn string(&self, name: &str) -> Result<Option<&'a str>, JsonError> {
        match self.member(name)? {
            None => Ok(None),
            Some([b'"', inner @ .., b'"']) if !inner.contains(&b'\\') => {
                core::str::from_utf8(inner).map(Some).map_err(|_| JsonError)
            }
            Some(_) => Err(JsonError),
        }
    }

    /// Member `name`'s value if it is an object; `None` if there is no such member.
    ///
    /// # Errors
    /// [`JsonError`] for a value of another type.
    pub fn object(&self, name: &str) -> Result<Option<Object<'a>>, JsonError> {
        match self.member(name)? {
            None => Ok(None),
            Some(value) if value.first() == Some(&b'{') => Object::parse(value).map(Some),
            Some(_) => Err(JsonError),
        }
    }
}

/// A member's raw name (between its quotes) and its value's text.
type Member<'a> = (&'a [u8], &'a [u8]);

/// The members of a checked object, in order.
struct Members<'a> {
    cursor: Cursor<'a>,
}

impl<'a> Members<'a> {
    /// The next member's raw name and value text; `None` after the last.
    fn next_member(&mut self) -> Result<Option<Member<'a>>, JsonError> {
        let c = &mut self.cursor;
        c.whitespace();
        if c.eat(b',') {
            c.whitespace();
        }
        if c.peek() != Some(b'"') {
            return Ok(None);
        }
        let key = c.string()?;
        c.whitespace();
        c.expect(b':')?;
        c.whitespace();
        let start = c.at;
        c.value(1)?;
        Ok(Some((&key[1..key.len() - 1], &c.text[start..c.at])))
    }

    /// Whether a member after the current one has the name `key`.
    fn repeats(&self, key: &[u8]) -> Result<bool, JsonError> {
        let mut rest = Members { cursor: self.cursor };
        while let Some((other, _)) = rest.next_member()? {
            if other == key {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A position in the text.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let here = self.peek() == Some(byte);
        self.at += usize::from(here);
        here
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.eat(byte) { Ok(()) } else { Err(JsonError) }
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// One value (RFC 8259 §3) at nesting `depth`.
    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        match self.peek().ok_or(JsonError)? {
            b'{' | b'[' if depth >= MAX_DEPTH => Err(JsonError),
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// An object (§4): names are strings without escapes, each named once.
    fn object(&mut self, depth: usize) -> Result<(), JsonError> {
        let start = self.at;
        self.expect(b'{')?;
        self.whitespace();
        if self.eat(b'}') {
            return Ok(());
        }
        for _ in 0..MAX_MEMBERS {
            if self.string()?.contains(&b'\\') {
                return Err(JsonError);
            }
            self.whitespace();
            self.expect(b':')?;
            self.whitespace();
            self.value(depth)?;
            self.whitespace();
            if self.eat(b'}') {
                return Object { text: &self.text[start..self.at] }.no_repeated_names();
            }
            self.expect(b',')?;
            self.whitespace();
        }
        Err(JsonError)
    }

    /// An array (§5).
    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        self.expect(b'[')?;
        self.whitespace();
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.whitespace();
            if self.eat(b']') {
                return Ok(());
            }
            self.expect(b',')?;
            self.whitespace();
        }
    }

    /// A string (§7), quotes included: no control character, escapes well formed.
    fn string(&mut self) -> Result<&'a [u8], JsonError> {
        let start = self.at;
        self.expect(b'"')?;
        loop {
            match self.peek().ok_or(JsonError)? {
                b'"' => break,
                b'\\' => self.escape()?,
                0..=0x1f => return Err(JsonError),
                _ => self.at += 1,
            }
        }
        self.at += 1;
        Ok(&self.text[start..self.at])
    }

    /// One escape: `\` and one of `"\/bfnrt`, or `u` and four hex digits.
    fn escape(&mut self) -> Result<(), JsonError> {
        self.at += 1;
        match self.peek().ok_or(JsonError)? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
            b'u' => {
                let hex = self.text.get(self.at + 1..self.at + 5).ok_or(JsonError)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(JsonError);
                }
                self.at += 5;
            }
            _ => return Err(JsonError),
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if !self.text[self.at..].starts_with(word) {
            return Err(JsonError);
        }
        self.at += word.len();
        Ok(())
    }

    /// A number (§6): `-`? (`0` | digits not starting with 0) (`.` digits)? (`e` sign? digits)?
    fn number(&mut self) -> Result<(), JsonError> {
        self.eat(b'-');
        if !self.eat(b'0') {
            self.digits()?;
        }
        if self.eat(b'.') {
            self.digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            self.digits()?;
        }
        Ok(())
    }

    /// One or more digits.
    fn digits(&mut self) -> Result<(), JsonError> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        if self.at == start { Err(JsonError) } else { Ok(()) }
    }
}

impl Object<'_> {
    /// Refuses an object that names a member twice.
    fn no_repeated_names(&self) -> Result<(), JsonError> {
        let mut members = self.members();
        while let Some((key, _)) = members.next_member()? {
            if members.repeats(key)? {
                return Err(JsonError);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
