package simulator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// host is one licensed user of the generated company.
type host struct {
	name       string  // display name as the vendor renders it (often a trailing space)
	email      string  // canonical, lower case
	emailMixed string  // a mixed-case spelling some records use; "" = none
	userType   string  // licence type
	pmis       []int64 // personal meeting ids, reused across meetings
	rate       float64 // expected meetings on an ordinary working day

	// Some hosts come and go (projects, leave): inactive on the first
	// offLen days of every period, counted from phase. period 0 = always on.
	period, offLen, phase int64
}

// activeOn reports whether the host holds meetings on local day d.
func (h *host) activeOn(d int64) bool {
	if h.period == 0 {
		return true
	}
	p := (d + h.phase) % h.period
	if p < 0 {
		p += h.period
	}
	return p >= h.offLen
}

// hostStream is the PCG stream of the company, apart from the day streams.
const hostStream = 0x636f6d70616e79 // "company"

// mailDomain is reserved for examples, so demo data never names a real firm.
const mailDomain = "example.com"

type nameSyllable struct{ han, pinyin string }

var familyNames = []nameSyllable{
	{"王", "wang"}, {"李", "li"}, {"张", "zhang"}, {"刘", "liu"}, {"陈", "chen"}, {"杨", "yang"},
	{"黄", "huang"}, {"赵", "zhao"}, {"吴", "wu"}, {"周", "zhou"}, {"徐", "xu"}, {"孙", "sun"},
	{"马", "ma"}, {"朱", "zhu"}, {"胡", "hu"}, {"郭", "guo"}, {"何", "he"}, {"林", "lin"},
	{"罗", "luo"}, {"高", "gao"}, {"郑", "zheng"}, {"梁", "liang"}, {"谢", "xie"}, {"宋", "song"},
	{"唐", "tang"}, {"韩", "han"}, {"冯", "feng"}, {"邓", "deng"}, {"曹", "cao"}, {"彭", "peng"},
	{"曾", "zeng"}, {"肖", "xiao"}, {"田", "tian"}, {"董", "dong"}, {"潘", "pan"}, {"袁", "yuan"},
	{"蔡", "cai"}, {"蒋", "jiang"}, {"余", "yu"}, {"叶", "ye"},
}

var givenNames = []nameSyllable{
	{"伟", "wei"}, {"芳", "fang"}, {"娜", "na"}, {"敏", "min"}, {"静", "jing"}, {"丽", "li"},
	{"强", "qiang"}, {"磊", "lei"}, {"军", "jun"}, {"洋", "yang"}, {"勇", "yong"}, {"艳", "yan"},
	{"杰", "jie"}, {"娟", "juan"}, {"涛", "tao"}, {"明", "ming"}, {"超", "chao"}, {"秀英", "xiuying"},
	{"霞", "xia"}, {"平", "ping"}, {"刚", "gang"}, {"桂英", "guiying"}, {"晓明", "xiaoming"}, {"志强", "zhiqiang"},
	{"建华", "jianhua"}, {"海燕", "haiyan"}, {"丹", "dan"}, {"鹏", "peng"}, {"婷", "ting"}, {"雪", "xue"},
	{"欣怡", "xinyi"}, {"子涵", "zihan"}, {"浩然", "haoran"}, {"宇轩", "yuxuan"}, {"思远", "siyuan"}, {"佳琪", "jiaqi"},
	{"文博", "wenbo"}, {"晨", "chen"}, {"昊", "hao"}, {"琳", "lin"}, {"一鸣", "yiming"}, {"雨桐", "yutong"},
}

var nicknames = []string{
	"Kevin", "Amy", "Jason", "Lily", "David", "Grace", "Eric", "Cathy", "Tony", "Vivian", "Frank", "Helen",
	"Leo", "Iris", "Jack", "Sunny", "Peter", "Coco", "Alan", "Joyce", "Michael", "Nina", "Ryan", "Wendy",
}

// newCompany builds the hosts of a seed: people with Chinese, pinyin or
// English display names, a few meeting rooms, busy and idle users.
func newCompany(seed uint64, n int) []host {
	rng := rand.New(rand.NewPCG(seed, hostStream))
	emails := make(map[string]bool, n)
	names := make(map[string]bool, n)
	hosts := make([]host, 0, n)
	rooms := 0
	for range n {
		var h host
		var local string
		if rng.Float64() < 0.04 {
			rooms++
			if rooms%3 == 0 {
				h.name = fmt.Sprintf("Training Room %d", rooms/3)
			} else {
				h.name = fmt.Sprintf("会议室 %dF-%c", 2+rooms/4, 'A'+rooms%4)
			}
			local = fmt.Sprintf("room%02d", rooms)
			h.userType = "Corp"
		} else {
			h.name, local = personName(rng, names)
			h.userType = pickUserType(rng.Float64())
		}
		names[h.name] = true
		h.email = uniqueEmail(local, emails)
		if rng.Float64() < 0.6 {
			h.name += " "
		}
		if rng.Float64() < 0.15 {
			h.emailMixed = mixedCase(h.email)
		}
		for range 1 + rng.IntN(3) {
			h.pmis = append(h.pmis, meetingNumber(rng))
		}
		switch {
		case rng.Float64() < 0.10: // rarely hosts: a licence nobody really uses
			h.rate = 0.02 + rng.Float64()*0.08
		default:
			h.rate = min(0.7*math.Exp(rng.NormFloat64()), 8)
		}
		if strings.HasPrefix(local, "room") {
			h.rate = 1.5 + rng.Float64()*3
		} else if rng.Float64() < 0.15 {
			h.period = 90 + rng.Int64N(91)
			h.offLen = 35 + rng.Int64N(46)
			h.phase = rng.Int64N(h.period)
		}
		hosts = append(hosts, h)
	}
	return hosts
}

// personName picks a display name not yet taken (after a few tries a
// namesake is accepted, as in any large company) and its e-mail local part.
func personName(rng *rand.Rand, taken map[string]bool) (name, local string) {
	for try := 0; ; try++ {
		fam := familyNames[rng.IntN(len(familyNames))]
		giv := givenNames[rng.IntN(len(givenNames))]
		style := rng.Float64()
		switch {
		case style < 0.65:
			name, local = fam.han+giv.han, giv.pinyin+"."+fam.pinyin
		case style < 0.85:
			name, local = title(giv.pinyin)+" "+title(fam.pinyin), giv.pinyin+"."+fam.pinyin
		default:
			nick := nicknames[rng.IntN(len(nicknames))]
			name, local = nick+" "+title(fam.pinyin), strings.ToLower(nick)+"."+fam.pinyin
		}
		if !taken[name] || try >= 20 {
			return name, local
		}
	}
}

func uniqueEmail(local string, taken map[string]bool) string {
	email := local + "@" + mailDomain
	for k := 2; taken[email]; k++ {
		email = fmt.Sprintf("%s%d@%s", local, k, mailDomain)
	}
	taken[email] = true
	return email
}

// pickUserType maps a uniform draw to a licence type: Corp 60 %, Pro 25 %,
// Basic 10 %, Edu 5 %.
func pickUserType(u float64) string {
	switch {
	case u < 0.60:
		return "Corp"
	case u < 0.85:
		return "Pro"
	case u < 0.95:
		return "Basic"
	}
	return "Edu"
}

// meetingNumber is a 10-digit meeting id like the vendor's 1376669196.
func meetingNumber(rng *rand.Rand) int64 {
	return 1_000_000_000 + rng.Int64N(9_000_000_000)
}

// title upper-cases the first letter of an ASCII word.
func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// mixedCase spells an e-mail the way people type it: "Wei.Zhang@Example.com".
func mixedCase(email string) string {
	b := []byte(email)
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == '.' || c == '@' || c == '-'
	}
	return string(b)
}

// upperDomain spells an e-mail with a shouting domain: "wei.zhang@EXAMPLE.COM".
func upperDomain(email string) string {
	at := strings.LastIndexByte(email, '@')
	return email[:at] + strings.ToUpper(email[at:])
}
