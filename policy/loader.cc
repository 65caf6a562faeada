// Loading, validating and compiling a partnership and its agreements into a
// PolicySet. Every error names file:line:col and the agreement, rule or field
// at fault.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "policy/compiled.h"
#include "policy/fields.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/textproto.h"
#include "stats/dataset.h"

namespace accord::policy {
namespace {

using google::protobuf::Message;
using google::protobuf::TextFormat;

constexpr size_t kMaxErrors = 50;

// A place in a text file: a message, its location and its ParseInfoTree.
class Place {
 public:
  Place(const std::string* file, const TextFormat::ParseInfoTree* tree,
        int line, int col)
      : file_(file), tree_(tree), line_(line), col_(col) {}

  // The location of field `name` (element `index` if repeated) of `msg`,
  // falling back to this place when it does not appear in the file.
  Place At(const Message& msg, absl::string_view name, int index = -1) const {
    const auto* f = msg.GetDescriptor()->FindFieldByName(std::string(name));
    if (tree_ == nullptr || f == nullptr) return *this;
    auto loc = tree_->GetLocation(f, f->is_repeated() ? index : -1);
    // Elements of a list (`parties: ["a", "b"]`) may only have the list's
    // location; fall back to the first element's.
    if (loc.line < 0 && f->is_repeated() && index > 0)
      loc = tree_->GetLocation(f, 0);
    if (loc.line < 0) return *this;
    const TextFormat::ParseInfoTree* sub =
        f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE
            ? tree_->GetTreeForNested(f, f->is_repeated() ? index : -1)
            : nullptr;
    return Place(file_, sub, loc.line, loc.column);
  }

  std::string str() const {
    return absl::StrCat(*file_, ":", line_ + 1, ":", col_ + 1);
  }

 private:
  const std::string* file_;
  const TextFormat::ParseInfoTree* tree_;
  int line_, col_;
};

class Errors {
 public:
  void Add(const Place& where, absl::string_view what) {
    if (list_.size() < kMaxErrors)
      list_.push_back(absl::StrCat(where.str(), ": ", what));
  }
  void AddRaw(std::string s) {
    if (list_.size() < kMaxErrors) list_.push_back(std::move(s));
  }
  bool empty() const { return list_.empty(); }
  absl::Status ToStatus() const {
    return absl::InvalidArgumentError(absl::StrJoin(list_, "\n"));
  }

 private:
  std::vector<std::string> list_;
};

// Parses with the shared validator (schema errors with file:line:col), then
// re-parses to keep the locations for Accord's own checks.
absl::Status ParseWithLocations(const PolicySet::Source& source, Message* msg,
                                TextFormat::ParseInfoTree* tree) {
  if (auto s = ParseTextProto(source.text, source.name, msg); !s.ok()) return s;
  TextFormat::Parser parser;
  parser.WriteLocationsTo(tree);
  msg->Clear();
  if (!parser.ParseFromString(source.text, msg)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source.name, ": not valid text format"));
  }
  return absl::OkStatus();
}

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

std::string CategoryName(accord::v1::DataCategory c) {
  return ShortEnumName(accord::v1::DataCategory_Name(c), "DATA_CATEGORY_");
}

struct AgreementFile {
  const PolicySet::Source* source;
  accord::v1::Agreement agreement;
  std::unique_ptr<TextFormat::ParseInfoTree> tree;
};

class Compiler {
 public:
  explicit Compiler(PolicyData* data) : d_(data) {}

  void Partnership(const PolicySet::Source& source) {
    TextFormat::ParseInfoTree tree;
    if (auto s = ParseWithLocations(source, &d_->partnership, &tree); !s.ok()) {
      errors_.AddRaw(std::string(s.message()));
      return;
    }
    const auto& p = d_->partnership;
    const Place top(&source.name, &tree, 0, 0);
    for (int i = 0; i < p.organisations_size(); ++i) {
      const auto& org = p.organisations(i);
      if (d_->org_index.contains(org.id())) {
        errors_.Add(top.At(p, "organisations", i).At(org, "id"),
                    absl::StrCat("organisation id ", Quote(org.id()),
                                 " is used twice"));
        continue;
      }
      d_->org_index[org.id()] = static_cast<uint32_t>(d_->org_ids.size());
      d_->org_ids.push_back(org.id());
      d_->org_kinds.push_back(org.kind());
    }
    for (int i = 0; i < p.purposes_size(); ++i) {
      const auto& purpose = p.purposes(i);
      const Place at = top.At(p, "purposes", i).At(purpose, "id");
      if (d_->purpose_index.contains(purpose.id())) {
        errors_.Add(at, absl::StrCat("purpose id ", Quote(purpose.id()),
                                     " is used twice"));
        continue;
      }
      if (d_->purposes.size() >= kMaxPurposes) {
        errors_.Add(at, absl::StrCat("a partnership may define at most ",
                                     kMaxPurposes, " purposes"));
        continue;
      }
      d_->purpose_index[purpose.id()] =
          static_cast<uint32_t>(d_->purposes.size());
      d_->purposes.push_back(purpose.id());
    }
  }

  void Agreements(const std::vector<PolicySet::Source>& sources) {
    files_.reserve(sources.size());
    for (const auto& source : sources) {
      AgreementFile file{
          &source, {}, std::make_unique<TextFormat::ParseInfoTree>()};
      if (auto s = ParseWithLocations(source, &file.agreement, file.tree.get());
          !s.ok()) {
        errors_.AddRaw(std::string(s.message()));
        continue;
      }
      files_.push_back(std::move(file));
    }
    // Duplicate ids across files.
    std::map<std::string, const AgreementFile*> by_id;
    std::vector<AgreementFile*> unique;
    for (auto& f : files_) {
      const Place top(&f.source->name, f.tree.get(), 0, 0);
      auto [it, fresh] = by_id.emplace(f.agreement.id(), &f);
      if (!fresh) {
        errors_.Add(
            top.At(f.agreement, "id"),
            absl::StrCat("agreement id ", Quote(f.agreement.id()),
                         " is already used by ", it->second->source->name));
        continue;
      }
      unique.push_back(&f);
    }
    std::sort(unique.begin(), unique.end(),
              [](const AgreementFile* a, const AgreementFile* b) {
                return a->agreement.id() < b->agreement.id();
              });
    // Agreements first (rules point at them), then rules.
    d_->agreements.reserve(unique.size());
    for (AgreementFile* f : unique) {
      CompiledAgreement a;
      a.proto = std::move(f->agreement);
      a.file = f->source->name;
      d_->agreements.push_back(std::move(a));
    }
    size_t rule_total = 0;
    for (const auto& a : d_->agreements) rule_total += a.proto.rules_size();
    d_->rules.reserve(rule_total);
    for (size_t i = 0; i < unique.size(); ++i)
      Agreement(&d_->agreements[i], *unique[i]->tree);
  }

  void Index() {
    std::sort(d_->rules.begin(), d_->rules.end(),
              [](const CompiledRule& a, const CompiledRule& b) {
                if (a.agreement->proto.id() != b.agreement->proto.id()) {
                  return a.agreement->proto.id() < b.agreement->proto.id();
                }
                return a.id() < b.id();
              });
    for (size_t i = 0; i < d_->rules.size(); ++i) {
      CompiledRule& r = d_->rules[i];
      r.order = static_cast<int>(i);
      for (uint32_t q : r.requesters) {
        auto& fan = d_->by_requester_action[RequesterActionKey(q, r.action)];
        for (uint32_t h : r.holders) {
          d_->by_parties_action[PartiesActionKey(q, h, r.action)].push_back(&r);
          d_->pairs.insert(PairKey(q, h));
          fan.emplace_back(h, &r);
        }
      }
    }
  }

  const Errors& errors() const { return errors_; }

 private:
  void Agreement(CompiledAgreement* a, const TextFormat::ParseInfoTree& tree) {
    const auto& p = a->proto;
    const Place top(&a->file, &tree, 0, 0);
    const std::string name = absl::StrCat("agreement ", Quote(p.id()));
    a->where = top.At(p, "id").str();
    a->valid_from = FromProtoTime(p.valid_from());
    a->valid_until = FromProtoTime(p.valid_until());
    a->has_review_by = p.has_review_by();
    a->review_by = FromProtoTime(p.review_by());
    if (a->valid_until <= a->valid_from) {
      errors_.Add(top.At(p, "valid_until"),
                  absl::StrCat(name, ": valid_until must be after valid_from"));
    }

    std::set<std::string> parties;
    for (int i = 0; i < p.parties_size(); ++i) {
      const std::string& party = p.parties(i);
      if (d_->OrgOf(party) < 0) {
        errors_.Add(top.At(p, "parties", i),
                    absl::StrCat(name, ": party ", Quote(party),
                                 " is not an organisation of the partnership"));
      } else if (!parties.insert(party).second) {
        errors_.Add(
            top.At(p, "parties", i),
            absl::StrCat(name, ": party ", Quote(party), " is listed twice"));
      }
    }
    if (p.parties_size() == 0) {
      errors_.Add(
          top,
          absl::StrCat(name, ": parties must name at least one organisation"));
    }
    auto check_party = [&](const Place& at, absl::string_view what,
                           const std::string& org) {
      if (!parties.count(org)) {
        errors_.Add(at,
                    absl::StrCat(name, ": ", what, " names ", Quote(org),
                                 ", which is not a party to this agreement"));
      }
    };
    for (int i = 0; i < p.joint_controllers_size(); ++i) {
      check_party(top.At(p, "joint_controllers", i), "joint_controllers",
                  p.joint_controllers(i));
    }
    for (int i = 0; i < p.contacts_size(); ++i) {
      check_party(top.At(p, "contacts", i), "contact", p.contacts(i).org_id());
    }
    for (int i = 0; i < p.sign_off_size(); ++i) {
      check_party(top.At(p, "sign_off", i), "sign_off", p.sign_off(i).org_id());
    }
    for (int i = 0; i < p.statutory_powers_size(); ++i) {
      check_party(top.At(p, "statutory_powers", i), "statutory_powers",
                  p.statutory_powers(i).org_id());
    }

    std::set<std::string> rule_ids;
    for (int i = 0; i < p.rules_size(); ++i) {
      const Place at = top.At(p, "rules", i);
      if (!rule_ids.insert(p.rules(i).id()).second) {
        errors_.Add(at.At(p.rules(i), "id"),
                    absl::StrCat(name, ": rule id ", Quote(p.rules(i).id()),
                                 " is used twice"));
        continue;
      }
      Rule(a, p.rules(i), at, parties);
    }
  }

  // Expands selectors to org indices among the agreement's parties.
  std::vector<uint32_t> Selectors(
      const google::protobuf::RepeatedPtrField<accord::v1::PartySelector>&
          selectors,
      const accord::v1::Rule& rule, absl::string_view field, const Place& at,
      const std::set<std::string>& parties, const std::string& rname) {
    std::set<uint32_t> out;
    for (int i = 0; i < selectors.size(); ++i) {
      const auto& s = selectors.Get(i);
      const Place here = at.At(rule, field, i);
      switch (s.selector_case()) {
        case accord::v1::PartySelector::kOrgId: {
          const int org = d_->OrgOf(s.org_id());
          if (org < 0) {
            errors_.Add(here, absl::StrCat(rname, ": ", field,
                                           " names unknown organisation ",
                                           Quote(s.org_id())));
          } else if (!parties.count(s.org_id())) {
            errors_.Add(
                here,
                absl::StrCat(rname, ": ", field, " names ", Quote(s.org_id()),
                             ", which is not a party to this agreement"));
          } else {
            out.insert(static_cast<uint32_t>(org));
          }
          break;
        }
        case accord::v1::PartySelector::kKind: {
          bool any = false;
          for (const std::string& party : parties) {
            const int org = d_->OrgOf(party);
            if (org >= 0 && d_->org_kinds[org] == s.kind()) {
              out.insert(static_cast<uint32_t>(org));
              any = true;
            }
          }
          if (!any) {
            d_->compile_warnings.push_back(absl::StrCat(
                here.str(), ": ", rname, ": ", field, " kind ",
                ShortEnumName(accord::v1::OrgKind_Name(s.kind()), "ORG_KIND_"),
                " matches no party to this agreement"));
          }
          break;
        }
        default:
          errors_.Add(here, absl::StrCat(rname, ": ", field,
                                         " names neither org_id nor kind"));
      }
    }
    return std::vector<uint32_t>(out.begin(), out.end());
  }

  // A STATISTICS rule's clause: known dimensions and periods, a suppression
  // that hides something, an Art 9 condition for ethnicity.
  void CheckStatisticsClause(const accord::v1::Rule& rule,
                             const std::string& rname, const Place& at) {
    const auto& st = rule.statistics();
    const Place here = at.At(rule, "statistics");
    if (rule.action() != accord::v1::ACTION_STATISTICS) {
      errors_.Add(here, absl::StrCat(rname,
                                     ": statistics applies only to "
                                     "ACTION_STATISTICS rules"));
    }
    for (int i = 0; i < st.dimensions_size(); ++i) {
      const auto dim = stats::DimensionNamed(st.dimensions(i));
      if (!dim) {
        errors_.Add(here.At(st, "dimensions", i),
                    absl::StrCat(rname, ": ", Quote(st.dimensions(i)),
                                 " is not a dimension of the monitoring "
                                 "dataset; the dimensions are: ",
                                 stats::DimensionNames()));
      } else if ((*dim == stats::Dimension::kEthnicity ||
                  *dim == stats::Dimension::kEthnicGroup) &&
                 rule.art9_condition() ==
                     accord::v1::ART9_CONDITION_UNSPECIFIED) {
        errors_.Add(here.At(st, "dimensions", i),
                    absl::StrCat(rname, " counts by ", st.dimensions(i),
                                 " (special category data) without "
                                 "art9_condition"));
      }
    }
    if (st.suppression().has_rounding() && st.suppression().rounding() == 0) {
      errors_.Add(here.At(st, "suppression"),
                  absl::StrCat(rname,
                               ": suppression rounding must be at least 1 (1 "
                               "leaves counts exact)"));
    }
    if (st.suppression().threshold() > 1000 ||
        st.suppression().rounding() > 1000) {
      errors_.Add(here.At(st, "suppression"),
                  absl::StrCat(rname,
                               ": suppression threshold and rounding are at "
                               "most 1000"));
    }
  }

  void Rule(CompiledAgreement* a, const accord::v1::Rule& rule, const Place& at,
            const std::set<std::string>& parties) {
    const std::string rname = absl::StrCat("rule ", Quote(rule.id()));
    CompiledRule r;
    r.agreement = a;
    r.proto = &rule;
    r.where = at.str();
    r.action = rule.action();
    r.consent_required = rule.consent_required();
    r.involvement_only = rule.involvement_only();
    r.requesters =
        Selectors(rule.requesters(), rule, "requesters", at, parties, rname);
    r.holders = Selectors(rule.holders(), rule, "holders", at, parties, rname);

    for (int i = 0; i < rule.purposes_size(); ++i) {
      const int purpose = d_->PurposeOf(rule.purposes(i));
      if (purpose < 0) {
        errors_.Add(
            at.At(rule, "purposes", i),
            absl::StrCat(rname, ": unknown purpose ", Quote(rule.purposes(i)),
                         " (not in the partnership's purposes)"));
        continue;
      }
      r.purposes |= uint64_t{1} << purpose;
    }

    bool special = false, offending = false;
    std::string special_name;
    for (int i = 0; i < rule.release_size(); ++i) {
      const auto& rel = rule.release(i);
      const Place here = at.At(rule, "release", i);
      int item = -1;
      accord::v1::DataCategory category = accord::v1::DATA_CATEGORY_UNSPECIFIED;
      std::string what;
      if (rel.has_field()) {
        const FieldSpec* spec = FindField(rel.field());
        if (spec == nullptr) {
          errors_.Add(here.At(rel, "field"),
                      absl::StrCat(rname, ": releases unknown field ",
                                   Quote(rel.field())));
          continue;
        }
        if (!TransformFitsField(rel.transform(), spec->kind)) {
          errors_.Add(
              here.At(rel, "transform"),
              absl::StrCat(rname, ": transform ",
                           accord::v1::Transform_Name(rel.transform()),
                           " does not apply to field ", Quote(spec->name),
                           " (a ", ValueKindName(spec->kind), ")"));
          continue;
        }
        item = ItemOfField(spec->name);
        category = spec->category;
        what = absl::StrCat("field ", Quote(spec->name));
      } else if (rel.has_category()) {
        category = rel.category();
        item = ItemOfCategory(category);
        if (item < 0) {
          errors_.Add(here.At(rel, "category"),
                      absl::StrCat(rname, ": releases no category"));
          continue;
        }
        if (!TransformFitsCategory(rel.transform())) {
          errors_.Add(here.At(rel, "transform"),
                      absl::StrCat(rname, ": transform ",
                                   accord::v1::Transform_Name(rel.transform()),
                                   " does not apply to records of category ",
                                   CategoryName(category),
                                   " (KEEP, DROP or DATE_TO_YEAR)"));
          continue;
        }
        what = absl::StrCat("category ", CategoryName(category));
      } else {
        errors_.Add(
            here,
            absl::StrCat(rname, ": release names neither field nor category"));
        continue;
      }
      if (r.transforms[item] != accord::v1::TRANSFORM_UNSPECIFIED) {
        errors_.Add(here, absl::StrCat(rname, ": releases ", what, " twice"));
        continue;
      }
      r.transforms[item] = rel.transform();
      if (rel.transform() == accord::v1::TRANSFORM_DROP) continue;
      r.releases.Add(item);
      if (IsSpecialCategory(category) && !special) {
        special = true;
        if (rule.art9_condition() == accord::v1::ART9_CONDITION_UNSPECIFIED) {
          errors_.Add(
              here,
              absl::StrCat(rname, " releases special category ",
                           CategoryName(category),
                           rel.has_field() ? absl::StrCat(" (", what, ")") : "",
                           " without art9_condition"));
        }
      }
      if (IsCriminalOffenceData(category) && !offending) {
        offending = true;
        if (rule.art10_condition() == accord::v1::ART10_CONDITION_UNSPECIFIED) {
          errors_.Add(here,
                      absl::StrCat(rname, " releases criminal offence data (",
                                   CategoryName(category),
                                   ") without art10_condition"));
        }
      }
    }

    // Involvement and content.
    if (rule.involvement_only()) {
      if (rule.release_size() > 0) {
        errors_.Add(
            at.At(rule, "release", 0),
            absl::StrCat(
                rname,
                " is involvement_only and must not release fields or "
                "categories (it answers only who works with the person)"));
      }
      if (rule.action() != accord::v1::ACTION_QUERY) {
        errors_.Add(
            at.At(rule, "involvement_only"),
            absl::StrCat(
                rname,
                ": involvement_only applies only to ACTION_QUERY rules"));
      }
    } else if (r.releases.empty()) {
      errors_.Add(
          at, absl::StrCat(rname,
                           " releases nothing (add release entries, or mark it "
                           "involvement_only)"));
    }
    if (rule.has_delivery_limit() &&
        rule.action() != accord::v1::ACTION_REFERRAL) {
      errors_.Add(
          at.At(rule, "delivery_limit"),
          absl::StrCat(
              rname, ": delivery_limit applies only to ACTION_REFERRAL rules"));
    }

    if (rule.has_statistics()) CheckStatisticsClause(rule, rname, at);

    // Consent: a rule resting on consent must require it; a clause that sets
    // consent aside only makes sense where consent is required and is not the
    // lawful basis.
    const bool consent_basis =
        rule.lawful_basis() == accord::v1::LAWFUL_BASIS_CONSENT;
    if (!rule.consent_required()) {
      if (consent_basis) {
        errors_.Add(at.At(rule, "lawful_basis"),
                    absl::StrCat(rname,
                                 " rests on LAWFUL_BASIS_CONSENT but has "
                                 "consent_required false"));
      }
      if (rule.art9_condition() ==
          accord::v1::ART9_CONDITION_EXPLICIT_CONSENT) {
        errors_.Add(
            at.At(rule, "art9_condition"),
            absl::StrCat(rname,
                         " relies on ART9_CONDITION_EXPLICIT_CONSENT but has "
                         "consent_required false"));
      }
      if (rule.art10_condition() == accord::v1::ART10_CONDITION_CONSENT) {
        errors_.Add(at.At(rule, "art10_condition"),
                    absl::StrCat(rname,
                                 " relies on ART10_CONDITION_CONSENT but has "
                                 "consent_required false"));
      }
      if (rule.has_no_consent()) {
        errors_.Add(at.At(rule, "no_consent"),
                    absl::StrCat(
                        rname,
                        " has a no_consent clause but does not require consent "
                        "(consent_required false)"));
      }
    }
    if (rule.has_no_consent()) {
      const auto& clause = rule.no_consent();
      const Place cat = at.At(rule, "no_consent");
      r.has_clause = true;
      if (clause.accepted_reasons_size() == 0) {
        errors_.Add(
            cat,
            absl::StrCat(rname, ": no_consent clause has no accepted_reasons"));
      }
      for (int reason : clause.accepted_reasons()) {
        if (reason > 0 && reason < 32)
          r.accepted_reasons |= uint32_t{1} << reason;
      }
      if (consent_basis) {
        errors_.Add(
            cat, absl::StrCat(rname,
                              " sets consent aside under its no_consent clause "
                              "but rests on LAWFUL_BASIS_CONSENT"));
      }
      if (rule.art9_condition() ==
          accord::v1::ART9_CONDITION_EXPLICIT_CONSENT) {
        errors_.Add(
            cat, absl::StrCat(rname,
                              " sets consent aside under its no_consent clause "
                              "but relies on ART9_CONDITION_EXPLICIT_CONSENT"));
      }
    }
    if (r.requesters.empty() || r.holders.empty()) {
      d_->compile_warnings.push_back(
          absl::StrCat(r.where, ": ", rname, " can never match: it names no ",
                       r.requesters.empty() ? "requester" : "holder",
                       " among the agreement's parties"));
    }
    d_->rules.push_back(std::move(r));
  }

  PolicyData* d_;
  Errors errors_;
  std::vector<AgreementFile> files_;
};

}  // namespace

std::string ShortEnumName(const std::string& full, absl::string_view prefix) {
  if (absl::StartsWith(full, prefix)) return full.substr(prefix.size());
  return full;
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

PolicySet::PolicySet(std::unique_ptr<PolicyData> data)
    : data_(std::move(data)) {}
PolicySet::~PolicySet() = default;

absl::StatusOr<std::shared_ptr<const PolicySet>> PolicySet::Compile(
    const Source& partnership, const std::vector<Source>& agreements) {
  auto data = std::make_unique<PolicyData>();
  Compiler compiler(data.get());
  compiler.Partnership(partnership);
  if (!compiler.errors().empty()) return compiler.errors().ToStatus();
  compiler.Agreements(agreements);
  if (!compiler.errors().empty()) return compiler.errors().ToStatus();
  compiler.Index();
  return std::shared_ptr<const PolicySet>(new PolicySet(std::move(data)));
}

absl::StatusOr<std::shared_ptr<const PolicySet>> PolicySet::Load(
    const std::string& partnership_file,
    const std::vector<std::string>& agreement_files) {
  std::vector<std::string> errors;
  Source partnership{partnership_file, {}};
  if (auto text = ReadFile(partnership_file); text.ok()) {
    partnership.text = std::move(*text);
  } else {
    errors.push_back(std::string(text.status().message()));
  }
  std::vector<Source> agreements;
  for (const auto& path : agreement_files) {
    auto text = ReadFile(path);
    if (!text.ok()) {
      errors.push_back(std::string(text.status().message()));
      continue;
    }
    agreements.push_back({path, std::move(*text)});
  }
  if (!errors.empty())
    return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return Compile(partnership, agreements);
}

}  // namespace accord::policy
