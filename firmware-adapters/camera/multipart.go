package camera

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strings"
)

// maxParts bounds the parts of one push: a camera sends a document and a few images.
const maxParts = 32

// part is one part of a multipart push.
type part struct {
	name, filename, contentType string
	data                        []byte
}

// mediaType returns the lower-case media type of a Content-Type value and its
// parameters; "" when there is none or it does not parse.
func mediaType(contentType string) (string, map[string]string) {
	if strings.TrimSpace(contentType) == "" {
		return "", nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", nil
	}
	return mt, params
}

// splitMultipart reads every part of a multipart body. A body that ends without its
// closing boundary (firmware that omits it) keeps the parts it has, the last one as
// far as it goes, and reports truncated; any other fault of the framing is
// malformed.
func splitMultipart(params map[string]string, body []byte) (parts []part, truncated bool, err error) {
	boundary := params["boundary"]
	if boundary == "" {
		return nil, false, malformed("multipart body without a boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextRawPart() // raw: a camera's Content-Transfer-Encoding is not ours to undo
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if len(parts) > 0 {
				return parts, true, nil
			}
			return nil, false, malformed("broken multipart body: " + err.Error())
		}
		if len(parts) == maxParts {
			return nil, false, malformed("too many parts in the multipart body")
		}
		data, err := io.ReadAll(p)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, false, malformed("broken multipart body: " + err.Error())
		}
		parts = append(parts, part{name: p.FormName(), filename: p.FileName(), contentType: p.Header.Get("Content-Type"), data: data})
		if err != nil {
			return parts, true, nil
		}
	}
	if len(parts) == 0 {
		return nil, false, malformed("multipart body without parts")
	}
	return parts, false, nil
}

// trimDoc strips a UTF-8 byte order mark and leading white space from a document.
func trimDoc(b []byte) []byte {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	return bytes.TrimLeft(b, " \t\r\n")
}

// isImagePart says whether a part is meant as an image: by its media type, its file
// name, or the JPEG marker it starts with. Images that are not JPEG are still
// returned, so that they are counted as malformed when stored.
func isImagePart(p part) bool {
	ct := strings.ToLower(p.contentType)
	fn := strings.ToLower(p.filename + " " + p.name)
	return strings.HasPrefix(ct, "image/") || strings.Contains(fn, ".jpg") || strings.Contains(fn, ".jpeg") ||
		hasJPEGMarker(p.data)
}

// hasJPEGMarker reports whether b starts with the JPEG start-of-image marker.
func hasJPEGMarker(b []byte) bool { return len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF }
