#include "backends/chat/jinja/jinja_template.hpp"

#include "backends/chat/jinja/jinja_error.hpp"
#include "backends/chat/jinja/jinja_lexer.hpp"
#include "backends/chat/jinja/jinja_parser.hpp"
#include "backends/chat/jinja/jinja_render.hpp"

namespace yard::backends::chat::jinja {

yard::result<jinja_template> jinja_template::compile(std::string_view source) {
  try {
    std::shared_ptr<const template_ast> ast = parse(lex(source));
    return jinja_template(std::move(ast));
  } catch (const template_error& err) {
    return err.to_error();
  } catch (const std::exception& e) {
    return make_error(errc::internal, std::string("chat template: ") + e.what());
  }
}

yard::result<std::string> jinja_template::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) return make_error(errc::bad_request, "chat template: the context must be a JSON object");
  try {
    return render_ast(*ast_, from_json(context));
  } catch (const template_error& err) {
    return err.to_error();
  } catch (const std::exception& e) {
    return make_error(errc::internal, std::string("chat template: ") + e.what());
  }
}

}  // namespace yard::backends::chat::jinja
