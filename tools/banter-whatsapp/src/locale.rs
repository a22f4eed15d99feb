//! The localized phrases WhatsApp writes into exports: media placeholders, deleted and edited markers,
//! encryption notices and other system lines. Matching is on whole phrases (case-insensitive for Latin
//! scripts); a user's message that merely mentions a phrase in a sentence is not taken for a marker.

/// Placeholders for media left out of an export ("Without media"), by language.
pub const MEDIA_OMITTED: &[&str] = &[
    // English (Android, iOS)
    "<media omitted>",
    "image omitted",
    "video omitted",
    "audio omitted",
    "sticker omitted",
    "gif omitted",
    "document omitted",
    "contact card omitted",
    "gif omitted",
    "location omitted",
    // German, Spanish, French, Italian, Portuguese, Dutch
    "<medien ausgeschlossen>",
    "bild weggelassen",
    "video weggelassen",
    "audio weggelassen",
    "sticker weggelassen",
    "<multimedia omitido>",
    "imagen omitida",
    "video omitido",
    "audio omitido",
    "sticker omitido",
    "<médias omis>",
    "<medias omis>",
    "image absente",
    "vidéo absente",
    "audio omis",
    "autocollant omis",
    "<media omessi>",
    "immagine omessa",
    "video omesso",
    "audio omesso",
    "<mídia oculta>",
    "<arquivo de mídia oculto>",
    "imagem ocultada",
    "vídeo ocultado",
    "áudio ocultado",
    "<media weggelaten>",
    "afbeelding weggelaten",
    "video weggelaten",
    "audio weggelaten",
    // Finnish, Indonesian, Turkish, Russian
    "<media jätetty pois>",
    "kuva jätetty pois",
    "video jätetty pois",
    "<media tidak disertakan>",
    "gambar tidak disertakan",
    "video tidak disertakan",
    "audio tidak disertakan",
    "<medya dahil edilmedi>",
    "görüntü dahil edilmedi",
    "<без медиафайлов>",
    "изображение отсутствует",
    // Persian, Arabic
    "<رسانه حذف شد>",
    "<رسانه دریافت نشد>",
    "تصویر حذف شد",
    "ویدیو حذف شد",
    "صدا حذف شد",
    "<تم استبعاد الوسائط>",
    "<الوسائط محذوفة>",
    "تم استبعاد الصورة",
    "تم استبعاد الفيديو",
    // Korean, Chinese, Japanese
    "<미디어 파일 제외됨>",
    "<미디어 생략>",
    "사진 생략",
    "동영상 생략",
    "<省略影音内容>",
    "<媒体已省略>",
    "<媒體已略去>",
    "图片已省略",
    "<メディアなし>",
    "画像は含まれていません",
];

/// "This message was deleted", by language.
pub const DELETED: &[&str] = &[
    "this message was deleted",
    "you deleted this message",
    "this message was deleted.",
    "you deleted this message.",
    "diese nachricht wurde gelöscht",
    "du hast diese nachricht gelöscht",
    "se eliminó este mensaje",
    "eliminaste este mensaje",
    "este mensaje fue eliminado",
    "ce message a été supprimé",
    "vous avez supprimé ce message",
    "questo messaggio è stato eliminato",
    "hai eliminato questo messaggio",
    "mensagem apagada",
    "esta mensagem foi apagada",
    "você apagou esta mensagem",
    "dit bericht is verwijderd",
    "je hebt dit bericht verwijderd",
    "tämä viesti poistettiin",
    "poistit tämän viestin",
    "pesan ini telah dihapus",
    "anda menghapus pesan ini",
    "bu mesaj silindi",
    "это сообщение удалено",
    "این پیام حذف شد",
    "این پیام را حذف کردید",
    "تم حذف هذه الرسالة",
    "لقد حذفت هذه الرسالة",
    "삭제된 메시지입니다",
    "此消息已删除",
    "你删除了此消息",
    "此訊息已刪除",
    "このメッセージは削除されました",
];

/// "<This message was edited>", by language (removed from the text; the message gets `edited: true`).
pub const EDITED: &[&str] = &[
    "<this message was edited>",
    "<diese nachricht wurde bearbeitet>",
    "<se editó este mensaje.>",
    "<se editó este mensaje>",
    "<ce message a été modifié>",
    "<questo messaggio è stato modificato>",
    "<esta mensagem foi editada>",
    "<dit bericht is bewerkt>",
    "<tätä viestiä on muokattu>",
    "<pesan ini telah diedit>",
    "<bu mesaj düzenlendi>",
    "<сообщение изменено>",
    "<این پیام ویرایش شد>",
    "<تم تعديل هذه الرسالة>",
    "<수정된 메시지입니다>",
    "<此消息已编辑>",
    "<已編輯此訊息>",
];

/// Fragments of group events; found in what would be the author of a line that contains ": " only
/// because a group name or description does.
pub const GROUP_EVENTS: &[&str] = &[
    "changed the subject",
    "changed this group's icon",
    "changed the group description",
    "created group",
    "security code",
    "joined using this group's invite link",
    "changed their phone number",
    "now an admin",
    "hat den betreff",
    "cambió el asunto",
    "a changé le sujet",
    "ha cambiato l'oggetto",
    "heeft het onderwerp",
    "موضوع را",
    "غيّر الموضوع",
    "تغییر داد",
];

/// Byte lengths of all phrases (lower-casing keeps them for these scripts): a message of another length
/// cannot be a phrase, and most messages are rejected on that alone, without lower-casing.
static PHRASE_LENGTHS: std::sync::LazyLock<[bool; 128]> = std::sync::LazyLock::new(|| {
    let mut lens = [false; 128];
    for p in MEDIA_OMITTED.iter().chain(DELETED).chain(EDITED) {
        if p.len() < 128 {
            lens[p.len()] = true;
        }
    }
    lens
});

/// True when the text, trimmed, is one of the phrases (Latin phrases case-insensitively).
pub fn is_phrase(text: &str, phrases: &[&str]) -> bool {
    let t = text.trim().trim_start_matches('\u{200E}').trim();
    if t.len() >= 128 || !PHRASE_LENGTHS[t.len()] {
        return false;
    }
    let lower = if t.is_ascii() { t.to_ascii_lowercase() } else { t.to_lowercase() };
    phrases.iter().any(|p| lower == *p)
}

/// The filename of an attachment, from iOS `<attached: 00000012-PHOTO-2023-02-09-21-05-11.jpg>` or
/// Android `IMG-20230209-WA0001.jpg (file attached)` (and localized "(Datei angehängt)", …).
pub fn attachment(text: &str) -> Option<String> {
    let t = text.trim().trim_start_matches('\u{200E}');
    let first = t.lines().next().unwrap_or("").trim();
    // The forms: `<attached: NAME>` (also `< attached: NAME >`, any of the words below), `NAME (file
    // attached)`, and `NAME <attached>` / `NAME ‹attached›` (the word alone after the name).
    if let Some(inner) = first.strip_prefix(['<', '‹']) {
        let inner = inner.trim_start();
        let lower = inner.to_lowercase();
        for word in ATTACHED {
            if lower.starts_with(word) {
                let rest = inner[word.len()..].trim_start();
                let Some(rest) = rest.strip_prefix(':') else { continue };
                let name = rest.split(['>', '›']).next().unwrap_or("").trim();
                return (!name.is_empty()).then(|| name.to_string());
            }
        }
    }
    if let Some(open) = first.rfind(['<', '‹']).filter(|_| first.ends_with(['>', '›'])) {
        let word = first[open..].trim_start_matches(['<', '‹']).trim_end_matches(['>', '›']).trim().to_lowercase();
        let name = first[..open].trim();
        if ATTACHED.contains(&word.as_str()) && !name.is_empty() {
            return Some(name.to_string());
        }
    }
    if is_media_file_name(first) {
        return Some(first.to_string());
    }
    if !first.ends_with(')') {
        return None;
    }
    for suffix in [
        " (file attached)",
        " (datei angehängt)",
        " (archivo adjunto)",
        " (fichier joint)",
        " (file allegato)",
        " (arquivo anexado)",
        " (bestand bijgevoegd)",
        " (tiedosto liitetty)",
        " (file terlampir)",
        " (dosya ekli)",
        " (فایل پیوست شد)",
        " (الملف مرفق)",
        " (첨부 파일)",
        " (文件附件)",
    ] {
        let lower = first.to_lowercase();
        if lower.ends_with(suffix) {
            let cut = first.len() - suffix.len();
            if first.is_char_boundary(cut) {
                return Some(first[..cut].trim().to_string());
            }
        }
    }
    None
}

/// A message that is only the file name WhatsApp gives media: `2015-08-04-PHOTO-00004762.jpg`,
/// `00000012-PHOTO-2023-02-09-21-05-11.jpg`, `IMG-20230209-WA0001.jpg` (also VID, AUD, PTT, STK, DOC).
fn is_media_file_name(t: &str) -> bool {
    const KINDS: &[&str] = &["PHOTO", "VIDEO", "AUDIO", "GIF", "STICKER", "DOCUMENT", "CONTACT"];
    const ANDROID: &[&str] = &["IMG", "VID", "AUD", "PTT", "STK", "DOC"];
    let Some((stem, ext)) = t.rsplit_once('.') else { return false };
    if t.contains(char::is_whitespace)
        || ext.is_empty()
        || ext.len() > 5
        || !ext.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return false;
    }
    let parts: Vec<&str> = stem.split('-').collect();
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    if ANDROID.contains(&parts[0]) {
        return parts.len() == 3
            && parts[1].len() == 8
            && digits(parts[1])
            && parts[2].starts_with("WA")
            && digits(&parts[2][2..]);
    }
    parts.iter().any(|p| KINDS.contains(p))
        && attachment_date(t).is_some()
        && parts.iter().all(|p| digits(p) || KINDS.contains(p))
}

/// The word for "attached" in `<attached: NAME>` and `NAME <attached>` (lower case).
const ATTACHED: &[&str] = &["attached", "anexado", "adjunto", "pièce jointe", "angehängt", "allegato", "bijgevoegd"];

/// Notices WhatsApp writes itself, which some exports put under the chat's name as if an author wrote
/// them (lower case, matched at the start of the text).
const NOTICES: &[&str] = &[
    "messages and calls are end-to-end encrypted",
    "messages to this group are now secured with end-to-end encryption",
    "messages to this chat and calls are now secured with end-to-end encryption",
    "messages you send to this group are now secured with end-to-end encryption",
    "los mensajes y las llamadas están cifrados de extremo a extremo",
    "los mensajes y llamadas están cifrados de extremo a extremo",
    "as mensagens e as chamadas são protegidas com a criptografia de ponta a ponta",
    "nachrichten und anrufe sind ende-zu-ende-verschlüsselt",
    "les messages et les appels sont chiffrés de bout en bout",
    "i messaggi e le chiamate sono crittografati end-to-end",
    "berichten en oproepen worden end-to-end versleuteld",
    "pesan dan panggilan terenkripsi secara end-to-end",
    "mesajlar ve aramalar uçtan uca şifrelidir",
    "پیام‌ها و تماس‌ها رمزگذاری سرتاسری",
    "الرسائل والمكالمات مشفرة تمامًا",
];

/// The text is a notice WhatsApp wrote itself (the encryption notice), whoever the export names as author.
pub fn is_notice(text: &str) -> bool {
    let t = text.trim_start_matches(['\u{200E}', ' ']);
    let head: String = t.chars().take(90).collect::<String>().to_lowercase();
    NOTICES.iter().any(|n| head.starts_with(n))
}

/// A media placeholder or attachment line.
pub fn is_media(text: &str) -> bool {
    let first = text.trim().trim_start_matches('\u{200E}').lines().next().unwrap_or("");
    is_phrase(first, MEDIA_OMITTED) || attachment(text).is_some()
}

/// Removes a trailing edited marker; returns the text and whether there was one.
pub fn strip_edited(text: &str) -> (String, bool) {
    let t = text.trim_end();
    if !t.ends_with('>') {
        return (text.to_string(), false);
    }
    let lower = t.to_lowercase();
    for m in EDITED {
        if lower.ends_with(m) {
            // Byte lengths can differ after lower-casing only for exotic letters; find the cut by chars.
            let n = m.chars().count();
            let cut = t.char_indices().rev().nth(n - 1).map_or(0, |(i, _)| i);
            let kept = t[..cut].trim_end_matches([' ', '\u{200E}', '\u{202F}', '\u{00A0}']);
            return (kept.to_string(), true);
        }
    }
    (text.to_string(), false)
}

/// What would be an author is a group event ("Ali changed the subject from …").
pub fn is_group_event(candidate_author: &str) -> bool {
    // Events are sentences ("Ali changed the subject from …"); names rarely have three words.
    if candidate_author.split_whitespace().nth(2).is_none() {
        return false;
    }
    let lower = candidate_author.to_lowercase();
    GROUP_EVENTS.iter().any(|f| lower.contains(f))
}

/// The date in an attachment name: `IMG-20230209-WA0001`, `PHOTO-2023-02-09-…`; as (year, month, day).
pub fn attachment_date(text: &str) -> Option<(u32, u32, u32)> {
    let b = text.as_bytes();
    let n = |d: &[u8], r: std::ops::Range<usize>| std::str::from_utf8(&d[r]).ok()?.parse::<u32>().ok();
    // A name that starts with the date: `2015-08-04-PHOTO-00004762.jpg`.
    for (i, _) in text.match_indices(|c: char| c.is_ascii_digit()) {
        if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'-') {
            continue;
        }
        let d = &b[i..];
        if d.len() >= 11
            && d[4] == b'-'
            && d[7] == b'-'
            && d[10] == b'-'
            && d[..4].iter().all(u8::is_ascii_digit)
            && let (Some(y), Some(m), Some(dd)) = (n(d, 0..4), n(d, 5..7), n(d, 8..10))
            && (2009..2100).contains(&y)
            && (1..=12).contains(&m)
            && (1..=31).contains(&dd)
        {
            return Some((y, m, dd));
        }
    }
    let mut i = 0;
    while i + 9 <= b.len() {
        if b[i] == b'-' {
            let d = &b[i + 1..];
            // -YYYYMMDD-
            if d.len() >= 9 && d[..8].iter().all(u8::is_ascii_digit) && d[8] == b'-' {
                let n = |r: std::ops::Range<usize>| std::str::from_utf8(&d[r]).ok()?.parse::<u32>().ok();
                if let (Some(y), Some(m), Some(dd)) = (n(0..4), n(4..6), n(6..8))
                    && (2009..2100).contains(&y)
                    && (1..=12).contains(&m)
                    && (1..=31).contains(&dd)
                {
                    return Some((y, m, dd));
                }
            }
            // -YYYY-MM-DD
            if d.len() >= 10 && d[4] == b'-' && d[7] == b'-' {
                let n = |r: std::ops::Range<usize>| std::str::from_utf8(&d[r]).ok()?.parse::<u32>().ok();
                if let (Some(y), Some(m), Some(dd)) = (n(0..4), n(5..7), n(8..10))
                    && (2009..2100).contains(&y)
                    && (1..=12).contains(&m)
                    && (1..=31).contains(&dd)
                {
                    return Some((y, m, dd));
                }
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_and_attachments() {
        assert!(is_media("<Media omitted>"));
        assert!(is_media("\u{200E}image omitted"));
        assert!(is_media("<Medien ausgeschlossen>"));
        assert!(is_media("<رسانه حذف شد>"));
        assert!(!is_media("I omitted the image on purpose"));
        assert_eq!(
            attachment("\u{200E}<attached: 00000012-PHOTO-2023-02-09-21-05-11.jpg>").as_deref(),
            Some("00000012-PHOTO-2023-02-09-21-05-11.jpg")
        );
        assert_eq!(
            attachment("IMG-20230209-WA0001.jpg (file attached)\ncaption").as_deref(),
            Some("IMG-20230209-WA0001.jpg")
        );
    }

    #[test]
    fn edited_and_deleted() {
        assert_eq!(strip_edited("see you soon <This message was edited>"), ("see you soon".to_string(), true));
        assert_eq!(strip_edited("plain"), ("plain".to_string(), false));
        assert!(is_phrase("This message was deleted", DELETED));
        assert!(is_phrase("\u{200E}You deleted this message.", DELETED));
        assert!(is_phrase("این پیام حذف شد", DELETED));
    }

    #[test]
    fn attachment_dates() {
        assert_eq!(attachment_date("IMG-20230209-WA0001.jpg (file attached)"), Some((2023, 2, 9)));
        assert_eq!(attachment_date("<attached: 00000012-PHOTO-2023-02-09-21-05-11.jpg>"), Some((2023, 2, 9)));
        assert_eq!(attachment_date("no date here 2023"), None);
        assert_eq!(attachment_date("<attached: 2015-08-04-PHOTO-00004762.jpg>"), Some((2015, 8, 4)));
        assert_eq!(attachment_date("2015-08-04-PHOTO-00004762.jpg"), Some((2015, 8, 4)));
        assert_eq!(attachment("2015-08-04-PHOTO-00004762.jpg").as_deref(), Some("2015-08-04-PHOTO-00004762.jpg"));
        assert_eq!(attachment("IMG-20230209-WA0001.jpg").as_deref(), Some("IMG-20230209-WA0001.jpg"));
        assert_eq!(attachment("see 2015-08-04 notes.txt"), None);
    }
}
