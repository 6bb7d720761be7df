//! Masking of personal data for display, as the Beijing Health Kit did: the surname and the
//! first and last two characters of a document number.

/// `11010519491231002X` → `11**************2X`.
pub fn document_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars.iter().enumerate().map(|(i, &c)| if i < 2 || i >= n - 2 { c } else { '*' }).collect()
}

/// `张三丰` → `张**`; `Zhang San` → `Z********`.
pub fn name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// `13812345678` → `138****5678`.
pub fn phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars.iter().enumerate().map(|(i, &c)| if i < 3 || i >= n - 4 { c } else { '*' }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks() {
        assert_eq!(super::document_number("11010519491231002X"), "11**************2X");
        assert_eq!(super::name("张三丰"), "张**");
        assert_eq!(super::phone("13812345678"), "138****5678");
        assert_eq!(super::document_number("E12"), "***");
    }
}
