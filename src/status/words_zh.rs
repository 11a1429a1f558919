//! Chinese words for the bounded values the page shows: the DNS audit's
//! findings ([`crate::audit::findings::CATALOGUE`]), the reasons of send
//! failures ([`SendReason`]) and bounces ([`BounceReason`]). The English
//! page shows the catalogue's own meanings and the reason ids; the Chinese
//! page shows these, so it carries no English but provider names. The
//! matches are exhaustive (a new reason needs its words) and a test checks
//! that every catalogue id has its line.

use crate::bounce::Reason as BounceReason;
use crate::probe::send::SendReason;

/// A DNS audit finding in plain Chinese.
pub fn finding(id: &str) -> Option<&'static str> {
    Some(match id {
        "spf.missing" => "域名没有 SPF 记录",
        "spf.multiple_records" => "有多条 SPF 记录，收件方会判为错误",
        "spf.syntax_error" => "SPF 记录格式错误",
        "spf.too_many_lookups" => "SPF 记录需要的 DNS 查询超过 10 次，收件方会判为错误",
        "spf.too_many_void_lookups" => "SPF 记录中有超过 2 次查不到结果的查询，收件方会判为错误",
        "spf.permissive_all" => "SPF 记录允许任何服务器代发（+all 或 ?all）",
        "spf.ptr_mechanism" => "SPF 记录使用了不应再用的 ptr 机制",
        "spf.include_not_found" => "SPF 记录引用（include）的域名没有 SPF 记录",
        "spf.redirect_not_found" => "SPF 记录重定向（redirect）的域名没有 SPF 记录",
        "spf.include_invalid" => "SPF 记录引用或重定向的域名的 SPF 记录无效或有多条",
        "spf.loop" => "SPF 记录的引用形成了循环",
        "spf.record_too_long" => "SPF 记录过长，可能无法在一个 DNS 应答中传回",
        "spf.mx_too_many_hosts" => "SPF 记录中 mx 所指域名的邮件服务器超过 10 台",
        "spf.no_all" => "SPF 记录没有结尾的 all 规则",
        "spf.redirect_ignored" => "SPF 记录已有 all 规则，重定向（redirect）不起作用",
        "spf.terms_after_all" => "SPF 记录中 all 之后的规则永远不会生效",
        "spf.unknown_modifier" => "SPF 记录中有收件方不认识的修饰符",
        "spf.lookups_not_counted" => "SPF 记录中有含宏的引用，查询次数无法准确统计",
        "spf.ip_not_permitted" => "配置的发信 IP 未被 SPF 记录允许",
        "spf.dns_error" => "SPF 检查所需的 DNS 查询没有得到应答",
        "dmarc.missing" => "域名没有 DMARC 记录",
        "dmarc.multiple_records" => "有多条 DMARC 记录，收件方不会执行 DMARC",
        "dmarc.syntax_error" => "DMARC 记录格式错误",
        "dmarc.policy_none" => "DMARC 策略为 none（只监测，不拦截）",
        "dmarc.pct_partial" => "DMARC 策略只作用于部分邮件（pct 小于 100）",
        "dmarc.no_rua" => "DMARC 记录没有可用的汇总报告地址",
        "dmarc.subdomain_policy_weaker" => "子域名的 DMARC 策略比主域名宽松",
        "dmarc.external_rua_unauthorized" => "外部的 DMARC 报告接收域名未授权接收报告",
        "dmarc.unknown_tag" => "DMARC 记录中有收件方不认识的标签",
        "dmarc.org_domain_policy" => "域名本身没有 DMARC 记录，使用上级组织域名的策略",
        "dmarc.dns_error" => "DMARC 检查所需的 DNS 查询没有得到应答",
        "dkim.missing" => "找不到 DKIM 公钥记录",
        "dkim.revoked" => "DKIM 公钥已被撤销（记录为空）",
        "dkim.key_too_short" => "DKIM 密钥太短",
        "dkim.testing_mode" => "DKIM 记录处于测试模式，收件方可能视为未签名",
        "dkim.syntax_error" => "DKIM 公钥记录或密钥格式错误",
        "dkim.unusable_key" => "DKIM 公钥记录的设置使其不能用于验证邮件签名",
        "dkim.multiple_records" => "同一个 DKIM 选择器下有多条公钥记录",
        "dkim.dns_error" => "DKIM 公钥记录查询失败",
        "mx.missing" => "域名没有 MX 记录",
        "mx.null_mx" => "域名声明不接收任何邮件（空 MX）",
        "mx.target_no_address" => "某个邮件服务器（MX）没有 IP 地址",
        "mx.target_is_cname" => "某个邮件服务器（MX）指向别名（CNAME）",
        "mx.target_is_ip" => "某个邮件服务器（MX）写成了 IP 地址而不是主机名",
        "mx.smtp_unreachable" => "无法连接某个邮件服务器（MX）",
        "mx.starttls_missing" => "某个邮件服务器（MX）不支持加密传输（STARTTLS）",
        "mx.starttls_failed" => "某个邮件服务器（MX）的加密传输握手失败",
        "mx.cert_invalid" => "某个邮件服务器（MX）的证书无效（过期、不受信任或名称不符）",
        "mx.cert_expiring" => "某个邮件服务器（MX）的证书即将过期",
        "mx.dns_error" => "MX 检查所需的 DNS 查询没有得到应答",
        "mta_sts.missing" => "域名没有 MTA-STS 记录",
        "mta_sts.multiple_records" => "有多条 MTA-STS 记录，发件方会忽略 MTA-STS",
        "mta_sts.syntax_error" => "MTA-STS 记录格式错误",
        "mta_sts.policy_fetch_failed" => "无法获取 MTA-STS 策略文件",
        "mta_sts.policy_invalid" => "MTA-STS 策略文件无效",
        "mta_sts.mode_testing" => "MTA-STS 策略处于测试模式，只报告不强制",
        "mta_sts.mode_none" => "MTA-STS 策略已撤销（模式为 none）",
        "mta_sts.max_age_short" => "MTA-STS 策略的有效期不足一天",
        "mta_sts.mx_not_covered" => "某个邮件服务器（MX）不在 MTA-STS 策略之内",
        "mta_sts.dns_error" => "MTA-STS 检查所需的 DNS 查询没有得到应答",
        "tls_rpt.missing" => "域名没有 TLS 报告（TLS-RPT）记录",
        "tls_rpt.multiple_records" => "有多条 TLS-RPT 记录，发件方会忽略",
        "tls_rpt.syntax_error" => "TLS-RPT 记录无效或没有可用的报告地址",
        "tls_rpt.dns_error" => "TLS-RPT 记录查询失败",
        "bimi.missing" => "域名没有 BIMI 记录",
        "bimi.multiple_records" => "有多条 BIMI 记录",
        "bimi.syntax_error" => "BIMI 记录格式错误",
        "bimi.dmarc_not_enforced" => "已发布 BIMI，但 DMARC 策略不够严格",
        "bimi.no_certificate" => "BIMI 没有标志证书（VMC/CMC）",
        "bimi.dns_error" => "BIMI 记录查询失败",
        "dnssec.unsigned" => "域名未启用 DNSSEC 签名",
        "dnssec.no_ds" => "域名已签名，但上级域没有对应的 DS 记录",
        "dnssec.dns_error" => "DNSSEC 检查所需的 DNS 查询没有得到应答",
        "ptr.missing" => "某个发信 IP 没有反向解析（PTR）记录",
        "ptr.not_confirmed" => "某个发信 IP 的反向解析与正向解析不一致",
        "ptr.dns_error" => "发信 IP 的反向或正向解析查询没有得到应答",
        "dnsbl.listed" => "发信 IP 或域名在黑名单上",
        "dnsbl.blocked" => "黑名单拒绝了查询，状态未知",
        "dnsbl.error" => "无法查询黑名单，状态未知",
        _ => return None,
    })
}

/// Why the message never left, in plain Chinese.
pub fn send_reason(r: SendReason) -> &'static str {
    match r {
        SendReason::Connect => "无法连接发信服务器",
        SendReason::Tls => "加密连接失败",
        SendReason::Auth => "发信服务器登录失败",
        SendReason::Smtp4xx => "发信服务器暂时拒绝",
        SendReason::Smtp5xx => "发信服务器拒绝",
        SendReason::Timeout => "超时",
        SendReason::Local => "mailcanary 内部错误",
        SendReason::RateLimited => "发送频率受限",
        SendReason::Quota => "发送额度用尽",
        SendReason::Http4xx => "应用接口拒绝请求",
        SendReason::Http5xx => "应用接口出错",
        SendReason::Protocol => "通信协议错误",
    }
}

/// Why a receiver refused the message, in plain Chinese.
pub fn bounce_reason(r: BounceReason) -> &'static str {
    match r {
        BounceReason::UserUnknown => "邮箱地址不存在",
        BounceReason::HostUnknown => "邮箱域名不存在或不收邮件",
        BounceReason::MailboxFull => "邮箱已满",
        BounceReason::Suspend => "邮箱已停用",
        BounceReason::HasMoved => "收件人已更换邮箱地址",
        BounceReason::Blocked => "我方发信服务器被拦截",
        BounceReason::BadReputation => "我方发信信誉不佳",
        BounceReason::RequirePtr => "我方发信 IP 缺少反向解析",
        BounceReason::AuthFailure => "发件认证（SPF/DKIM/DMARC）未通过",
        BounceReason::NotCompliantRfc => "邮件格式不合规范",
        BounceReason::SpamDetected => "被判为垃圾邮件",
        BounceReason::VirusDetected => "被判为含病毒",
        BounceReason::PolicyViolation => "违反对方邮箱的策略",
        BounceReason::Rejected => "发件地址被拒绝",
        BounceReason::Filtered => "被收件人的过滤规则拒收",
        BounceReason::NoRelaying => "对方服务器拒绝转发",
        BounceReason::NotAccept => "对方域名不接收邮件",
        BounceReason::SecurityError => "未满足加密或认证要求",
        BounceReason::TooManyConn => "连接过多",
        BounceReason::Speeding => "发送过快，被限速",
        BounceReason::ExceedLimit => "超过对方的限制",
        BounceReason::MesgTooBig => "邮件过大",
        BounceReason::ContentError => "邮件内容无法处理",
        BounceReason::Expired => "在队列中滞留过久已放弃投递",
        BounceReason::NetworkError => "网络错误",
        BounceReason::SystemError => "对方系统错误",
        BounceReason::SystemFull => "对方系统存储已满",
        BounceReason::MailerError => "对方投递程序出错",
        BounceReason::SyntaxError => "邮件协议语法错误",
        BounceReason::OnHold => "原因不明",
        BounceReason::Undefined => "原因不明",
        BounceReason::Delivered => "已送达",
        BounceReason::Feedback => "投诉反馈",
        BounceReason::Vacation => "自动回复",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::findings::CATALOGUE;

    #[test]
    fn every_finding_has_chinese_words() {
        for (id, _, _) in CATALOGUE {
            let zh = finding(id).unwrap_or_else(|| panic!("no Chinese words for {id}"));
            assert!(!zh.is_empty());
        }
        assert_eq!(finding("nothing.such"), None);
        // Every reason has words (the matches are exhaustive; this runs them).
        assert!(SendReason::ALL.iter().all(|r| !send_reason(*r).is_empty()));
        assert!(BounceReason::ALL
            .iter()
            .all(|r| !bounce_reason(*r).is_empty()));
    }
}
