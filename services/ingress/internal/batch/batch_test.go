package batch

import (
	"errors"
	"strings"
	"testing"

	"github.com/apitosms/apitosms/libs/apperr"
)

func TestParseItems(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 1000)
	cases := []struct {
		name      string
		body      string
		wantPhone string // of the only item when valid
		wantErr   string // item error, "" when valid
	}{
		{"valid message", `{"phone":"+1234567890","message":"hi"}`, "+1234567890", ""},
		{"text alias", `{"phone":"0712345678","text":"hi"}`, "0712345678", ""},
		{"message wins", `{"phone":"0712345678","message":"m","text":""}`, "0712345678", ""},
		{"normalized", `{"phone":" +1 (234) 567-89.0 ","message":"hi"}`, "+1234567890", ""},
		{"six digits", `{"phone":"123456","message":"hi"}`, "123456", ""},
		{"twenty digits", `{"phone":"+12345678901234567890","message":"hi"}`, "+12345678901234567890", ""},
		{"five digits", `{"phone":"12345","message":"hi"}`, "", ErrInvalidPhone},
		{"21 digits", `{"phone":"123456789012345678901","message":"hi"}`, "", ErrInvalidPhone},
		{"letters", `{"phone":"12345a789","message":"hi"}`, "", ErrInvalidPhone},
		{"plus inside", `{"phone":"123+456789","message":"hi"}`, "", ErrInvalidPhone},
		{"phone number type", `{"phone":1234567890,"message":"hi"}`, "", ErrInvalidPhone},
		{"no phone", `{"message":"hi"}`, "", ErrInvalidPhone},
		{"no message", `{"phone":"1234567890"}`, "", ErrMessageRequired},
		{"blank message", `{"phone":"1234567890","message":"  \n"}`, "", ErrMessageRequired},
		{"message not string", `{"phone":"1234567890","message":5}`, "", ErrMessageRequired},
		{"1000 code points", `{"phone":"1234567890","message":"` + long + `"}`, "1234567890", ""},
		{"1001 code points", `{"phone":"1234567890","message":"` + long + `x"}`, "", ErrMessageTooLong},
		{"invalid utf8", "{\"phone\":\"1234567890\",\"message\":\"a\xff\"}", "", ErrInvalidUTF8},
		{"NUL in message", `{"phone":"1234567890","message":"a\u0000b"}`, "", ErrMessageNUL},
		{"NUL in text, slow path", `{"phone":"1234567890","text":"\u0000","x":null}`, "", ErrMessageNUL},
		{"other control characters kept", `{"phone":"1234567890","message":"a\tb\nc\u0007"}`, "1234567890", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Parse([]byte(tc.body), 1000)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tc.wantErr == "" {
				if len(res.Valid) != 1 || len(res.Errors) != 0 {
					t.Fatalf("want one valid item, got %+v", res)
				}
				if res.Valid[0].Phone != tc.wantPhone {
					t.Fatalf("phone = %q, want %q", res.Valid[0].Phone, tc.wantPhone)
				}
				return
			}
			if len(res.Valid) != 0 || len(res.Errors) != 1 || res.Errors[0].Error != tc.wantErr || res.Errors[0].Index != 0 {
				t.Fatalf("want error %q, got %+v", tc.wantErr, res)
			}
		})
	}
}

func TestParseBatchKeepsOrderAndIndexes(t *testing.T) {
	t.Parallel()
	body := `[{"phone":"1234567","message":"a"}, 7, {"phone":"x","message":"b"}, {"phone":"7654321","text":"c"}]`
	res, err := Parse([]byte(body), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Valid) != 2 || res.Valid[0].Index != 0 || res.Valid[1].Index != 3 || res.Valid[1].Text != "c" {
		t.Fatalf("valid = %+v", res.Valid)
	}
	if len(res.Errors) != 2 || res.Errors[0].Index != 1 || res.Errors[0].Error != ErrInvalidItem ||
		res.Errors[1].Index != 2 || res.Errors[1].Error != ErrInvalidPhone {
		t.Fatalf("errors = %+v", res.Errors)
	}
}

func TestParseWholeRequestErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		body string
		code string
	}{
		{"not json", `nope`, "invalid_json"},
		{"empty", ``, "invalid_json"},
		{"scalar", `"hi"`, "invalid_json"},
		{"truncated array", `[{"phone":"1"`, "invalid_json"},
		{"empty array", `[]`, "empty_batch"},
		{"too many", `[` + strings.TrimSuffix(strings.Repeat(`{"phone":"1234567","message":"a"},`, 4), ",") + `]`, "batch_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.body), 3)
			var e *apperr.Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("err = %v, want code %s", err, tc.code)
			}
		})
	}
	if e := TooLarge(1000); e.Message != "Too many messages in one request (max 1000)" || e.Status != 413 {
		t.Fatalf("TooLarge = %+v", e)
	}
}
